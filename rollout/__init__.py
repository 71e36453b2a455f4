"""knative-rollout: progressive delivery for Knative Serving."""

__version__ = "0.1.0"
