"""One exporter per metric dialect: each turns a request's outcome into the series Knative (or Kourier)
would expose for it. See rollout/knative/dialects.py for the names."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from rollout.knative import dialects as d
from rollout_lab.sandbox.knative.fleet import ACTIVATOR_POD
from rollout_lab.sandbox.traffic.exposition import Family, LabelValues, Registry


@dataclass(frozen=True)
class Outcome:
    """What happened to one request.

    `pod` is the revision pod whose queue-proxy handled it (None when the activator answered itself);
    `code` is the status the client got; `app_code` what the user container answered (None when the
    queue-proxy rejected the request before the app saw it). Latencies are in seconds: `app_latency` in the
    container, `proxy_latency` at the queue-proxy (queueing included), `activator_latency` in the activator
    (cold-start wait included, when `via_activator`), `total_latency` at the gateway."""

    namespace: str
    service: str
    configuration: str
    revision: str
    code: int
    pod: str | None
    app_code: int | None
    app_latency: float
    proxy_latency: float
    via_activator: bool
    activator_latency: float
    total_latency: float


class Exporter(Protocol):
    registry: Registry

    def record(self, outcome: Outcome) -> None: ...

    def forget_pods(self, alive: Collection[str]) -> int:
        """Drop the series of revision pods that are gone; returns how many series went."""
        ...


def _pod_filter(pod_label: str, alive: Collection[str]) -> Callable[[Family, LabelValues], bool]:
    def keep(family: Family, values: LabelValues) -> bool:
        if pod_label not in family.label_names:
            return True
        pod = values[family.label_names.index(pod_label)]
        return pod == ACTIVATOR_POD or pod in alive

    return keep


class ClassicExporter:
    """knative-classic: queue-proxy revision_request_* / revision_app_request_* and activator_request_*."""

    def __init__(self) -> None:
        self.registry = Registry()
        labels = d.CLASSIC_REVISION_LABELS
        buckets = d.CLASSIC_LATENCY_BUCKETS_MS
        r = self.registry
        self.request_count = r.counter(d.CLASSIC_REQUEST_COUNT, "The number of requests that are routed to queue-proxy", labels)  # fmt: skip
        self.request_latencies = r.histogram(d.CLASSIC_REQUEST_LATENCIES, "The response time in millisecond", labels, buckets)  # fmt: skip
        self.app_count = r.counter(d.CLASSIC_APP_REQUEST_COUNT, "The number of requests that are routed to user-container", labels)  # fmt: skip
        self.app_latencies = r.histogram(d.CLASSIC_APP_REQUEST_LATENCIES, "The response time in millisecond", labels, buckets)  # fmt: skip
        self.activator_count = r.counter(d.CLASSIC_ACTIVATOR_REQUEST_COUNT, "The number of requests that are routed to Activator", labels)  # fmt: skip
        self.activator_latencies = r.histogram(d.CLASSIC_ACTIVATOR_REQUEST_LATENCIES, "The response time in millisecond", labels, buckets)  # fmt: skip

    @staticmethod
    def _values(o: Outcome, pod: str, container: str, code: int) -> LabelValues:
        return (o.namespace, o.service, o.configuration, o.revision, pod, container, str(code), d.response_code_class(code))  # fmt: skip

    def record(self, outcome: Outcome) -> None:
        if outcome.pod is not None:
            values = self._values(outcome, outcome.pod, d.CLASSIC_QUEUE_CONTAINER, outcome.code)
            self.request_count.inc(values)
            self.request_latencies.observe(values, outcome.proxy_latency * 1000.0)
            if outcome.app_code is not None:
                app_values = self._values(outcome, outcome.pod, d.CLASSIC_QUEUE_CONTAINER, outcome.app_code)
                self.app_count.inc(app_values)
                self.app_latencies.observe(app_values, outcome.app_latency * 1000.0)
        if outcome.via_activator:
            values = self._values(outcome, ACTIVATOR_POD, d.CLASSIC_ACTIVATOR_CONTAINER, outcome.code)
            self.activator_count.inc(values)
            self.activator_latencies.observe(values, outcome.activator_latency * 1000.0)

    def forget_pods(self, alive: Collection[str]) -> int:
        return self.registry.drop(_pod_filter("pod_name", alive))


class OtelExporter:
    """knative-otel: queue-proxy kn_serving_invocation_duration_seconds with the labels our scrape config
    adds, and the activator's http_server_request_duration_seconds."""

    QUEUE_LABELS = (
        d.OTEL_STATUS_LABEL,
        d.OTEL_NAMESPACE_LABEL,
        d.OTEL_POD_LABEL,
        d.OTEL_SERVICE_LABEL,
        d.OTEL_CONFIGURATION_LABEL,
        d.OTEL_REVISION_LABEL,
    )
    ACTIVATOR_LABELS = (
        "http_request_method",
        d.OTEL_STATUS_LABEL,
        d.OTEL_NAMESPACE_LABEL,
        d.OTEL_SERVICE_LABEL,
        d.OTEL_CONFIGURATION_LABEL,
        d.OTEL_REVISION_LABEL,
    )

    def __init__(self) -> None:
        self.registry = Registry()
        buckets = d.OTEL_DURATION_BUCKETS_S
        self.invocation = self.registry.histogram(
            d.OTEL_INVOCATION_DURATION, "The duration of task execution", self.QUEUE_LABELS, buckets
        )
        self.activator = self.registry.histogram(
            d.OTEL_ACTIVATOR_DURATION, "Duration of HTTP server requests.", self.ACTIVATOR_LABELS, buckets
        )

    def record(self, outcome: Outcome) -> None:
        o = outcome
        if o.pod is not None:
            values = (str(o.code), o.namespace, o.pod, o.service, o.configuration, o.revision)
            self.invocation.observe(values, o.proxy_latency)
        if o.via_activator:
            values = ("GET", str(o.code), o.namespace, o.service, o.configuration, o.revision)
            self.activator.observe(values, o.activator_latency)

    def forget_pods(self, alive: Collection[str]) -> int:
        return self.registry.drop(_pod_filter(d.OTEL_POD_LABEL, alive))


class KourierExporter:
    """kourier: the Envoy gateway's per-cluster (namespace/revision) request counters and timings."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.rq = r.counter(d.ENVOY_UPSTREAM_RQ, "", ("envoy_response_code", "envoy_cluster_name"))
        self.rq_xx = r.counter(
            d.ENVOY_UPSTREAM_RQ_XX, "", ("envoy_response_code_class", "envoy_cluster_name")
        )
        self.rq_total = r.counter(d.ENVOY_UPSTREAM_RQ_TOTAL, "", ("envoy_cluster_name",))
        self.rq_time = r.histogram(
            d.ENVOY_UPSTREAM_RQ_TIME, "", ("envoy_cluster_name",), d.ENVOY_TIME_BUCKETS_MS
        )

    def record(self, outcome: Outcome) -> None:
        cluster = d.envoy_cluster_name(outcome.namespace, outcome.revision)
        self.rq.inc((str(outcome.code), cluster))
        self.rq_xx.inc((str(outcome.code // 100), cluster))
        self.rq_total.inc((cluster,))
        self.rq_time.observe((cluster,), outcome.total_latency * 1000.0)

    def forget_pods(self, alive: Collection[str]) -> int:
        return 0  # gateway series are per cluster, not per revision pod


def make_exporter(dialect: d.Dialect) -> Exporter:
    if dialect == "knative-classic":
        return ClassicExporter()
    if dialect == "knative-otel":
        return OtelExporter()
    return KourierExporter()
