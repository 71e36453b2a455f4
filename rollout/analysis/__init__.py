"""Metric templates to PromQL, query batching, the MetricSource protocol and its Prometheus adapter."""
