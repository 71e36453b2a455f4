"""The knrollout.dev/v1alpha1 API: RolloutPolicy and Rollout, defined once as pydantic models."""
