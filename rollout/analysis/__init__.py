"""Query batching, the MetricProvider protocol (Argo Rollouts' metric-provider seam) and its Prometheus
adapter."""
