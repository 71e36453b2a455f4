"""Knative request metrics with known counts per revision, written in each dialect's names and labels.

Samples every 15 s from T0 to T0 + 900 s; the tests evaluate at AT = T0 + 600 s over a 300 s window, so
the window holds samples k = 20..40 (20 steps; Prometheus 2.x ranges include both ends).

Per step (15 s) and revision, identical in every dialect:

shop/web-00001 (stable)
    pod a: +10 ok, +1 server error                          -> window: 200 ok, 20 errors
    pod b: +5 ok, restarts at k = 30 (counter back to 0)    -> window: 100 ok (the reset costs nothing)
    activator: +4 ok, +1 server error (a proxied app error that queue-proxy also counted)
    -> RequestCounts(320, 20): the activator's error is not counted twice.
    latency (ms edges 10, 50, 100, 1000): pod a +2/+5/+8/+10 (+Inf +10), pod b +1/+2/+3/+5 (+Inf +5),
    pod b also restarting at k = 30 -> cumulative (60, 140, 220, 300), total 300.
shop/web-00002 (canary)
    pod c: +3 ok
    pod d: comes at k = 27 (first sample 0) and goes after k = 33: +4 ok per step -> raw increase 24 over
    90 s; without a sample at the window's start it is read with increase(), which extrapolates the end by
    half a step (the series stops 105 s before the window end) and not the start (it starts at zero):
    24 * 97.5 / 90 = 26
    activator: +2 server errors per step (cold-start 503s queue-proxy never saw) -> 40 added to both
    -> RequestCounts(60 + 26 + 40 = 126, 40).
    latency: pod c +0/+1/+2/+3 (+Inf +3) -> cumulative (0, 20, 40, 60), total 60.
blog/web-00001 (same revision name in another namespace)
    pod e: +7 ok, +7 server errors -> RequestCounts(280, 140); latency +7 in every bucket -> all 140.
shop/web-00003: no series at all -> NoData.

Every pod is a scrape target (`instance` "<pod>:9091", `job` per dialect) with an `up` series over its
samples: pod d's target is new at k = 27, so its series fall back to increase() as above. Two more revisions,
in namespaces of their own (BORN, GAP), test series without a sample at the window's start:
born/web-00001
    pod h: +10 ok from k = 0; its first server error comes at k = 25, scraped as 3 (three errors before that
    scrape), then +1 per step -> RequestCounts(218, 18): its target answered at the window's start without the
    series, so the series was born inside the window and counts from zero (increase() would lose the 3).
gap/web-00001
    pod g: +5 ok per step since k = -40, but its scrapes fail from k = 0 to 24 (`up` 0, no samples), so at the
    window's start its series has no sample (the last one, k = -1, is beyond the 5-minute lookback); from k = 25
    it is scraped again, its counter at 325. Its target was down at the window's start, so the series is read
    with increase(): +75 over k = 25..40, extrapolated half a step toward the start (the first sample is 75 s
    inside): 75 * 232.5 / 225 = 77.5 -> RequestCounts(78, 0). Counted from zero it would be 400, the pod's
    whole history.

Kourier has no activator metrics: Envoy sits in front of the activator and counts its 503s itself, so the
activator's own errors are written as Envoy 503s of the revision's cluster (and the activator's proxied
requests are not written at all, since Envoy counts each request once). Same expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rollout.analysis.keys import RevisionKey
from rollout.api.source import Dialect
from rollout.engine.observations import LatencyHistogram, Measurement, NoData, RequestCounts
from tests.analysis.prometheus_server import Series

T0 = 1_700_000_000
STEP = 15
LAST_STEP = 60
AT = T0 + 600
WINDOW = 300.0

STABLE = RevisionKey("shop", "web-00001")
CANARY = RevisionKey("shop", "web-00002")
OTHER_NS = RevisionKey("blog", "web-00001")
MISSING = RevisionKey("shop", "web-00003")
ALL_KEYS = frozenset({STABLE, CANARY, OTHER_NS, MISSING})
BORN = RevisionKey("born", "web-00001")
GAP = RevisionKey("gap", "web-00001")
EXPECTED_UNSEEN_AT_START: Mapping[RevisionKey, Measurement] = {
    BORN: RequestCounts(218, 18),
    GAP: RequestCounts(78, 0),
}

EXPECTED_COUNTS: Mapping[RevisionKey, Measurement] = {
    STABLE: RequestCounts(320, 20),
    CANARY: RequestCounts(126, 40),
    OTHER_NS: RequestCounts(280, 140),
}
EXPECTED_LATENCY: Mapping[RevisionKey, Measurement] = {
    STABLE: LatencyHistogram((0.01, 0.05, 0.1, 1.0), (60, 140, 220, 300), 300),
    CANARY: LatencyHistogram((0.01, 0.05, 0.1, 1.0), (0, 20, 40, 60), 60),
    OTHER_NS: LatencyHistogram((0.01, 0.05, 0.1, 1.0), (140, 140, 140, 140), 140),
}


def expected(table: Mapping[RevisionKey, Measurement]) -> dict[RevisionKey, Measurement]:
    out = dict(table)
    out[MISSING] = NoData()  # compared by type in the tests: the reason text is free
    return out


def _counter(
    per_step: int,
    first: int = 0,
    last: int = LAST_STEP,
    reset_at: int | None = None,
    initial: int = 0,
    gap: range = range(0),
) -> list[tuple[float, float]]:
    """A counter's samples from k = first (value `initial`) to k = last, none scraped at the steps in `gap`."""
    samples: list[tuple[float, float]] = []
    value = initial
    for k in range(first, last + 1):
        if k > first:
            value = per_step if k == reset_at else value + per_step
        if k not in gap:
            samples.append((float(T0 + k * STEP), float(value)))
    return samples


@dataclass(frozen=True)
class _Pod:
    key: RevisionKey
    pod: str
    ok: int
    errors: int = 0
    first: int = 0
    last: int = LAST_STEP
    reset_at: int | None = None
    buckets: tuple[int, int, int, int, int] | None = None  # cumulative per step: 10, 50, 100, 1000 ms, +Inf
    errors_from: int | None = None  # the server errors' series appears at this step (default: `first`)
    errors_initial: int = 0  # ... with this value at its first sample
    gap: range = range(0)  # steps whose scrapes failed: no samples, `up` 0


_QUEUE_PROXY_PODS = (
    _Pod(STABLE, "web-00001-a", ok=10, errors=1, buckets=(2, 5, 8, 10, 10)),
    _Pod(STABLE, "web-00001-b", ok=5, reset_at=30, buckets=(1, 2, 3, 5, 5)),
    _Pod(CANARY, "web-00002-c", ok=3, buckets=(0, 1, 2, 3, 3)),
    _Pod(CANARY, "web-00002-d", ok=4, first=27, last=33),
    _Pod(OTHER_NS, "web-00001-e", ok=7, errors=7, buckets=(7, 7, 7, 7, 7)),
    _Pod(BORN, "web-00001-h", ok=10, errors=1, errors_from=25, errors_initial=3),
    _Pod(GAP, "web-00001-g", ok=5, first=-40, gap=range(0, 25)),
)
# Requests the activator answered or proxied, per revision: (proxied ok, errors).
_ACTIVATOR = {STABLE: (4, 1), CANARY: (0, 2)}
# Activator errors that queue-proxy never saw (what Envoy adds in Kourier).
_ACTIVATOR_ONLY_ERRORS = {CANARY: 2}

_MS_EDGES = ("10", "50", "100", "1000", "+Inf")
_S_EDGES = ("0.01", "0.05", "0.1", "1", "+Inf")


@dataclass(frozen=True)
class _Names:
    requests: str
    activator: str | None
    buckets: str
    edges: tuple[str, ...]
    labels: Callable[[RevisionKey, str], dict[str, str]]  # revision key, pod -> labels
    code: Callable[[bool], dict[str, str]]  # failed? -> code labels


_NAMES: Mapping[Dialect, _Names] = {
    Dialect.KNATIVE_CLASSIC: _Names(
        "revision_request_count",
        "activator_request_count",
        "revision_request_latencies_bucket",
        _MS_EDGES,
        lambda key, pod: {
            "namespace_name": key.namespace,
            "revision_name": key.revision,
            "configuration_name": "web",
            "service_name": "web",
            "pod_name": pod,
            "container_name": "queue-proxy",
        },
        lambda failed: (
            {"response_code": "500", "response_code_class": "5xx"}
            if failed
            else {"response_code": "200", "response_code_class": "2xx"}
        ),
    ),
    Dialect.KNATIVE_OTEL: _Names(
        "kn_serving_invocation_duration_seconds_count",
        "http_server_request_duration_seconds_count",
        "kn_serving_invocation_duration_seconds_bucket",
        _S_EDGES,
        lambda key, pod: {"k8s_namespace_name": key.namespace, "kn_revision_name": key.revision, "pod": pod},
        lambda failed: {
            "http_response_status_code": "503" if failed else "200",
            "http_request_method": "GET",
        },
    ),
    Dialect.KOURIER: _Names(
        "envoy_cluster_upstream_rq",
        None,
        "envoy_cluster_upstream_rq_time_bucket",
        _MS_EDGES,
        lambda key, pod: {"envoy_cluster_name": f"{key.namespace}/{key.revision}", "pod": f"gw-{pod}"},
        lambda failed: {"envoy_response_code": "503" if failed else "200"},
    ),
}


def _target(dialect: Dialect, pod: str) -> dict[str, str]:
    return {"instance": f"{pod}:9091", "job": f"knative-{dialect.value}"}


def _up(dialect: Dialect, pod: str, first: int = 0, last: int = LAST_STEP, gap: range = range(0)) -> Series:
    """The scrape target's `up`: 1 at every scrape from k = first to last, 0 where its scrapes failed."""
    samples = [(float(T0 + k * STEP), 0.0 if k in gap else 1.0) for k in range(first, last + 1)]
    return Series("up", _target(dialect, pod), samples)


def _pod_series(dialect: Dialect, p: _Pod) -> list[Series]:
    names = _NAMES[dialect]
    base = {**names.labels(p.key, p.pod), **_target(dialect, p.pod)}
    out = [_up(dialect, p.pod, p.first, p.last, p.gap)]
    if p.ok:
        samples = _counter(p.ok, p.first, p.last, p.reset_at, gap=p.gap)
        out.append(Series(names.requests, {**base, **names.code(False)}, samples))
    if p.errors:
        born = p.first if p.errors_from is None else p.errors_from
        samples = _counter(p.errors, born, p.last, p.reset_at, p.errors_initial, p.gap)
        out.append(Series(names.requests, {**base, **names.code(True)}, samples))
    for edge, per_step in zip(names.edges, p.buckets or (), strict=False):
        samples = _counter(per_step, p.first, p.last, p.reset_at, gap=p.gap)
        out.append(Series(names.buckets, {**base, "le": edge}, samples))
    return out


def series_for(dialect: Dialect) -> list[Series]:
    names = _NAMES[dialect]
    out = [s for p in _QUEUE_PROXY_PODS for s in _pod_series(dialect, p)]
    if names.activator is not None:
        out.append(_up(dialect, "activator-7f9c"))
        for key, (ok, errors) in _ACTIVATOR.items():
            base = {
                **names.labels(key, "activator-7f9c"),
                **_target(dialect, "activator-7f9c"),
                "container_name": "activator",
            }
            for failed, per_step in ((False, ok), (True, errors)):
                if per_step:
                    out.append(Series(names.activator, {**base, **names.code(failed)}, _counter(per_step)))
    else:
        out.append(_up(dialect, "gateway-2"))
        for key, errors in _ACTIVATOR_ONLY_ERRORS.items():
            labels = {**names.labels(key, "gateway-2"), **_target(dialect, "gateway-2"), **names.code(True)}
            out.append(Series(names.requests, labels, _counter(errors)))
    return out


# A bursty revision in its own namespace (Knative's classic names): +1 request per step, +101 in the step
# that ends at k = 21, the first sample inside a window (T0 + 300 + d, T0 + 600 + d] for 0 <= d < 15. Exact
# count: 120 requests; PromQL's increase() sees only the samples inside such a window (k = 21..40: +19 over
# 285 s) and extrapolates them to 20 when d > 0.
BURST = RevisionKey("burst", "web-00001")
EXPECTED_BURST = RequestCounts(120, 0)


def _burst_series() -> Series:
    value, samples = 0.0, []
    for k in range(LAST_STEP + 1):
        value += 0 if k == 0 else (101 if k == 21 else 1)
        samples.append((float(T0 + k * STEP), value))
    names = _NAMES[Dialect.KNATIVE_CLASSIC]
    return Series(names.requests, {**names.labels(BURST, "web-00001-f"), **names.code(False)}, samples)


def all_series() -> list[Series]:
    return [*(s for d in Dialect for s in series_for(d)), _burst_series()]
