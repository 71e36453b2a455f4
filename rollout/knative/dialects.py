"""Knative's request metrics, per dialect: names, labels, units and histogram buckets.

Shared by the sandbox's traffic generator (which exposes exactly these series) and the analysis code (which
queries them). See ../shared/research/knative.md.

- `knative-classic` (Knative <= 1.18, OpenCensus): queue-proxy `revision_request_*` (what the proxy saw,
  queueing included) and `revision_app_request_*` (what the user container answered), activator
  `activator_request_*`; latencies in milliseconds; labels namespace_name, service_name,
  configuration_name, revision_name, pod_name, container_name, response_code, response_code_class.
- `knative-otel` (Knative >= 1.21, OpenTelemetry): queue-proxy `kn_serving_invocation_duration_seconds`
  (seconds) with `http_response_status_code` and NO revision attribute: the scrape config must copy pod
  labels onto the series. Ours (chart and docs) copies them to the OTel-style names the activator already
  uses (`OTEL_SCRAPE_LABELS`), so one selector works for both. Activator `http_server_request_duration_seconds`
  with kn_revision_name, kn_service_name, kn_configuration_name, k8s_namespace_name.
- `kourier` (Envoy gateway): `envoy_cluster_upstream_rq{envoy_cluster_name="<ns>/<revision>",
  envoy_response_code}` counters and `envoy_cluster_upstream_rq_time` (milliseconds) histograms; the
  activator's 503s pass through the gateway, so they are counted here too.
"""

from __future__ import annotations

from typing import Final, Literal

Dialect = Literal["knative-classic", "knative-otel", "kourier"]
DIALECTS: Final[tuple[Dialect, ...]] = ("knative-classic", "knative-otel", "kourier")

# --- knative-classic ---------------------------------------------------------------------------------
CLASSIC_LATENCY_BUCKETS_MS: Final[tuple[float, ...]] = (
    5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000,
    2000, 5000, 10000, 20000, 50000, 100000,
)  # fmt: skip
CLASSIC_REVISION_LABELS: Final[tuple[str, ...]] = (
    "namespace_name",
    "service_name",
    "configuration_name",
    "revision_name",
    "pod_name",
    "container_name",
    "response_code",
    "response_code_class",
)
CLASSIC_QUEUE_CONTAINER: Final = "queue-proxy"
CLASSIC_ACTIVATOR_CONTAINER: Final = "activator"
CLASSIC_REQUEST_COUNT: Final = "revision_request_count"
CLASSIC_REQUEST_LATENCIES: Final = "revision_request_latencies"
CLASSIC_APP_REQUEST_COUNT: Final = "revision_app_request_count"
CLASSIC_APP_REQUEST_LATENCIES: Final = "revision_app_request_latencies"
CLASSIC_ACTIVATOR_REQUEST_COUNT: Final = "activator_request_count"
CLASSIC_ACTIVATOR_REQUEST_LATENCIES: Final = "activator_request_latencies"

# --- knative-otel ------------------------------------------------------------------------------------
OTEL_DURATION_BUCKETS_S: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
OTEL_INVOCATION_DURATION: Final = "kn_serving_invocation_duration_seconds"
OTEL_ACTIVATOR_DURATION: Final = "http_server_request_duration_seconds"
OTEL_STATUS_LABEL: Final = "http_response_status_code"
OTEL_NAMESPACE_LABEL: Final = "k8s_namespace_name"
OTEL_REVISION_LABEL: Final = "kn_revision_name"
OTEL_SERVICE_LABEL: Final = "kn_service_name"
OTEL_CONFIGURATION_LABEL: Final = "kn_configuration_name"
OTEL_POD_LABEL: Final = "k8s_pod_name"
# What our scrape config adds to queue-proxy series: target label <- pod label (or pod metadata).
OTEL_SCRAPE_LABELS: Final[dict[str, str]] = {
    OTEL_NAMESPACE_LABEL: "__meta_kubernetes_namespace",
    OTEL_POD_LABEL: "__meta_kubernetes_pod_name",
    OTEL_REVISION_LABEL: "__meta_kubernetes_pod_label_serving_knative_dev_revision",
    OTEL_SERVICE_LABEL: "__meta_kubernetes_pod_label_serving_knative_dev_service",
    OTEL_CONFIGURATION_LABEL: "__meta_kubernetes_pod_label_serving_knative_dev_configuration",
}

# --- kourier -----------------------------------------------------------------------------------------
ENVOY_TIME_BUCKETS_MS: Final[tuple[float, ...]] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
    1800000, 3600000,
)  # fmt: skip
ENVOY_UPSTREAM_RQ: Final = "envoy_cluster_upstream_rq"
ENVOY_UPSTREAM_RQ_XX: Final = "envoy_cluster_upstream_rq_xx"
ENVOY_UPSTREAM_RQ_TOTAL: Final = "envoy_cluster_upstream_rq_total"
ENVOY_UPSTREAM_RQ_TIME: Final = "envoy_cluster_upstream_rq_time"


def envoy_cluster_name(namespace: str, revision: str) -> str:
    return f"{namespace}/{revision}"


def response_code_class(code: int) -> str:
    """Knative's `response_code_class` label: "2xx", "5xx", ..."""
    return f"{code // 100}xx"
