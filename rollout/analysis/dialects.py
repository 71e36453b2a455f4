"""Where each metrics dialect keeps request counts and latency histograms per revision.

Three dialects (see ../shared/research/knative.md):

knative-classic (Knative <= 1.18, OpenCensus, queue-proxy on :9091)
    requests: `revision_request_count` (every request queue-proxy answered, including the 503s of its own
    overload breaker and its timeouts; `revision_app_request_count` counts only what reached the user
    container and would miss those), labels `namespace_name`, `revision_name`, `response_code_class`.
    activator: `activator_request_count`, same labels. latency: `revision_request_latencies_bucket` (ms).

knative-otel (Knative >= 1.21, OpenTelemetry, request metrics turned on)
    requests: `kn_serving_invocation_duration_seconds_count`, code label `http_response_status_code`;
    activator: `http_server_request_duration_seconds_count` with `kn_revision_name`, `k8s_namespace_name`;
    latency: `kn_serving_invocation_duration_seconds_bucket` (seconds).
    Queue-proxy series carry no revision label of their own. Our scrape config (the chart) adds them, for
    queue-proxy pods only (pods with the label `serving.knative.dev/revision`):
        - source_labels: [__meta_kubernetes_pod_label_serving_knative_dev_revision]
          target_label: kn_revision_name
        - source_labels: [__meta_kubernetes_namespace]
          target_label: k8s_namespace_name
    so that queue-proxy and activator series group by the same two labels. (The activator's scrape job
    must not get these relabelings: its series already carry the revision's namespace, and a target label
    of the same name would push it to `exported_k8s_namespace_name`.) The names are settings
    (`DialectSpec.with_revision_labels`) for clusters whose scrape config uses others.

kourier (gateway Envoy, any Knative version)
    requests: `envoy_cluster_upstream_rq` with `envoy_cluster_name="<namespace>/<revision>"` and
    `envoy_response_code`; Envoy sits in front of the activator, so activator errors are already in it.
    latency: `envoy_cluster_upstream_rq_time_bucket` (ms).

Activator errors: a request that the activator failed (cold-start overflow 503, 502/504 towards the pod)
never reaches queue-proxy. A request it proxied is counted by both. Per revision and window we add
`max(0, activator 5xx - queue-proxy 5xx)` to both requests and failures: exact when the activator was in
the path for all of the revision's traffic or for none of it, and otherwise an undercount of the
activator's own errors rather than a double count of the application's (a double count would fall mostly
on a small canary, which sits behind the activator more often than stable, and look like a regression).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from rollout.analysis.keys import RevisionKey
from rollout.api.promql import regex_alternation, regex_literal, string_literal
from rollout.api.source import Dialect
from rollout.knative import dialects as names

_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METRIC_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")

# A revision filter with more alternatives than this (or a longer pattern) is left out of the query:
# one wider query is cheaper than a very long regex, and the rows are filtered here.
MAX_ALTERNATIVES = 100
MAX_PATTERN_CHARS = 4000


def _check_label(name: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Prometheus label name")
    return name


@dataclass(frozen=True)
class RevisionLabels:
    """How a series names its revision: two labels, or one label `<namespace><separator><revision>`
    (Kourier's cluster name) when `separator` is set (then `namespace` is unused)."""

    namespace: str
    revision: str
    separator: str | None = None

    def __post_init__(self) -> None:
        _check_label(self.revision)
        if self.separator is None:
            _check_label(self.namespace)
        elif not self.separator:
            raise ValueError("a combined revision label needs a non-empty separator")

    @property
    def group_by(self) -> tuple[str, ...]:
        if self.separator is not None:
            return (self.revision,)
        return (self.namespace, self.revision)

    def key_of(self, labels: Mapping[str, str]) -> tuple[str, str] | None:
        """(namespace, revision) named by a result row's labels, or None when the row has no such labels."""
        if self.separator is not None:
            combined = labels.get(self.revision, "")
            namespace, sep, revision = combined.partition(self.separator)
            return (namespace, revision) if sep and namespace and revision else None
        namespace = labels.get(self.namespace, "")
        revision = labels.get(self.revision, "")
        return (namespace, revision) if namespace and revision else None

    def matchers(self, keys: Collection[RevisionKey]) -> list[str]:
        """Label matchers selecting (at least) the given revisions: exact alternatives while they stay
        short, then namespaces only, then nothing (the caller filters the rows either way)."""
        namespaces = {k.namespace for k in keys}
        if self.separator is not None:
            exact = regex_alternation(f"{k.namespace}{self.separator}{k.revision}" for k in keys)
            if len(keys) <= MAX_ALTERNATIVES and len(exact) <= MAX_PATTERN_CHARS:
                return [f"{self.revision}=~{exact}"]
            prefix = "|".join(regex_literal(ns) for ns in sorted(namespaces))
            pattern = string_literal(f"(?:{prefix}){regex_literal(self.separator)}.+")
            if len(namespaces) <= MAX_ALTERNATIVES and len(pattern) <= MAX_PATTERN_CHARS:
                return [f"{self.revision}=~{pattern}"]
            return []
        out: list[str] = []
        ns_pattern = regex_alternation(namespaces)
        if len(namespaces) <= MAX_ALTERNATIVES and len(ns_pattern) <= MAX_PATTERN_CHARS:
            out.append(f"{self.namespace}=~{ns_pattern}")
        revisions = {k.revision for k in keys}
        rev_pattern = regex_alternation(revisions)
        if len(revisions) <= MAX_ALTERNATIVES and len(rev_pattern) <= MAX_PATTERN_CHARS:
            out.append(f"{self.revision}=~{rev_pattern}")
        return out


@dataclass(frozen=True)
class CounterFamily:
    """A request counter per revision; a row is a failure when its code label starts with `5`
    (`5xx` classes, `503` codes, Envoy's `5` class alike)."""

    component: str  # what emits it, for messages: queue-proxy, activator, envoy
    metric: str
    labels: RevisionLabels
    code_label: str

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.metric):
            raise ValueError(f"{self.metric!r} is not a Prometheus metric name")
        _check_label(self.code_label)


@dataclass(frozen=True)
class HistogramFamily:
    """A latency histogram (`_bucket` series with `le`) per revision, in 1/`units_per_second` seconds."""

    component: str
    bucket_metric: str
    labels: RevisionLabels
    units_per_second: float  # 1000 for milliseconds, 1 for seconds

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.bucket_metric):
            raise ValueError(f"{self.bucket_metric!r} is not a Prometheus metric name")
        if self.units_per_second <= 0:
            raise ValueError("units_per_second must be positive")


@dataclass(frozen=True)
class DialectSpec:
    """The metric families builtin metrics read in one dialect."""

    dialect: Dialect
    requests: CounterFamily
    activator: CounterFamily | None
    latency: HistogramFamily

    def with_revision_labels(self, namespace: str, revision: str) -> DialectSpec:
        """The same dialect with queue-proxy series grouped by other label names (the scrape config's)."""
        labels = RevisionLabels(namespace, revision)
        return replace(
            self,
            requests=replace(self.requests, labels=labels),
            latency=replace(self.latency, labels=labels),
        )


# Metric and label names come from rollout.knative.dialects, which the sandbox's generator exposes too.
_CLASSIC_LABELS = RevisionLabels("namespace_name", "revision_name")
_OTEL_LABELS = RevisionLabels(names.OTEL_NAMESPACE_LABEL, names.OTEL_REVISION_LABEL)
_KOURIER_LABELS = RevisionLabels("", "envoy_cluster_name", separator="/")
_CLASSIC_CODE = "response_code_class"

KNATIVE_CLASSIC = DialectSpec(
    dialect=Dialect.KNATIVE_CLASSIC,
    requests=CounterFamily("queue-proxy", names.CLASSIC_REQUEST_COUNT, _CLASSIC_LABELS, _CLASSIC_CODE),
    activator=CounterFamily(
        "activator", names.CLASSIC_ACTIVATOR_REQUEST_COUNT, _CLASSIC_LABELS, _CLASSIC_CODE
    ),
    latency=HistogramFamily(
        "queue-proxy", f"{names.CLASSIC_REQUEST_LATENCIES}_bucket", _CLASSIC_LABELS, 1000.0
    ),
)
KNATIVE_OTEL = DialectSpec(
    dialect=Dialect.KNATIVE_OTEL,
    requests=CounterFamily(
        "queue-proxy", f"{names.OTEL_INVOCATION_DURATION}_count", _OTEL_LABELS, names.OTEL_STATUS_LABEL
    ),
    activator=CounterFamily(
        "activator", f"{names.OTEL_ACTIVATOR_DURATION}_count", _OTEL_LABELS, names.OTEL_STATUS_LABEL
    ),
    latency=HistogramFamily("queue-proxy", f"{names.OTEL_INVOCATION_DURATION}_bucket", _OTEL_LABELS, 1.0),
)
KOURIER = DialectSpec(
    dialect=Dialect.KOURIER,
    requests=CounterFamily("envoy", names.ENVOY_UPSTREAM_RQ, _KOURIER_LABELS, "envoy_response_code"),
    activator=None,
    latency=HistogramFamily("envoy", f"{names.ENVOY_UPSTREAM_RQ_TIME}_bucket", _KOURIER_LABELS, 1000.0),
)

DEFAULT_SPECS: Mapping[Dialect, DialectSpec] = {
    Dialect.KNATIVE_CLASSIC: KNATIVE_CLASSIC,
    Dialect.KNATIVE_OTEL: KNATIVE_OTEL,
    Dialect.KOURIER: KOURIER,
}
