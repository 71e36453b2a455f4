"""The sandbox: an in-process Kubernetes API server with Knative, and simulated traffic."""
