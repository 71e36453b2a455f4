"""knative-rollout: progressive delivery for Knative Serving."""

from importlib.metadata import PackageNotFoundError, version

try:
    # one version source: pyproject.toml, through the installed package's metadata
    __version__ = version("knative-rollout")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
