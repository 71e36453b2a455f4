"""Builtin metrics as PromQL, and their answers as Measurements. Pure: no I/O.

One builtin query batch becomes one PromQL query per metric family (queue-proxy or Envoy, plus the
activator for error rates), each grouped by revision:

    sum by (<namespace>, <revision>, <code>) (<the window's increase of C>)
    sum by (<namespace>, <revision>, le) (<the window's increase of B>)

where C and B are the counter and bucket selectors with the revision filter: each series' exact increase
over the window (`window_increase`) is taken per series (per pod, per code) before the sum, so pods that come
and go and counter resets are handled; the sums are rounded to whole requests here, once, at the end. A
latency batch that names its buckets (the judges' thresholds) selects only those and +Inf with an `le`
matcher: a histogram has 15-27 buckets per pod, most of the series such a query would otherwise touch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rollout.analysis.dialects import CounterFamily, DialectSpec, HistogramFamily
from rollout.analysis.keys import RevisionKey
from rollout.analysis.results import Sample
from rollout.analysis.source import BuiltinQuery
from rollout.api.policy import BuiltinMetric
from rollout.api.promql import promql_duration, regex_literal, string_literal
from rollout.engine import evidence
from rollout.engine.observations import (
    Measurement,
    MeasurementError,
    NoData,
)


@dataclass(frozen=True)
class FamilyQuery:
    """The PromQL text for one metric family of a builtin batch."""

    component: str
    metric: str
    promql: str


def _selector(metric: str, matchers: Sequence[str]) -> str:
    return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def window_increase(selector: str, window_seconds: float, *, born: bool = False) -> str:
    """Each series' increase over the window ending at the query's time, exact where Prometheus allows: its
    last sample then minus its last sample at the window's start. Not `increase()` alone, which takes only
    the samples inside the window and extrapolates them to its edges: with two or three scrapes per window, a
    count off by up to half, which the comparison reads as evidence (docs/benchmark.md measured 2-4% false
    rollbacks on identical canaries in the simulator). A series without a sample at the window's start (a pod
    born inside it, or one Prometheus did not scrape for minutes) and one whose counter was reset inside the
    window fall back to `increase()`: it reads only the samples inside the window, so a scrape gap never
    counts a counter's whole history.

    With `born`, a series without a sample at the window's start starts from zero when its scrape target
    (same `instance` and `job`) answered then without it (`up` 1): it was born since, and all of its value is
    the window's. `increase()` would lose its first sample."""
    window = promql_duration(window_seconds)
    start = f"{selector} offset {window}"
    if born:
        start = f"({start} or {selector} * 0 and on(instance, job) (up offset {window} == 1))"
    return f"(({selector} - {start}) >= 0 or increase({selector}[{window}]))"


def counter_promql(family: CounterFamily, keys: Sequence[RevisionKey], window_seconds: float) -> str:
    """Request counts by response code. Queue-proxy creates a code's series at its first request, so a new
    revision's first failures are a series born inside a window: counted from zero (`born`), or the failures'
    first sample would be lost while the successes' series, born earlier, lose nothing. A latency histogram's
    buckets are born together, at the pod's or code's first request, and lose alike: they are left to
    `increase()`, since the lookup costs Prometheus one more selector and join over every series, and bucket
    series are most of the series a batch reads."""
    group = ", ".join((*family.labels.group_by, family.code_label))
    selector = _selector(family.metric, family.labels.matchers(keys))
    return f"sum by ({group}) ({window_increase(selector, window_seconds, born=True)})"


def _le_value_pattern(seconds: float, units_per_second: float) -> str | None:
    """An RE2 pattern for the `le` text of the bucket at `seconds`, in the family's units, as exporters and
    Prometheus write it ("350", "350.0", "0.35"); None when it would take an exponent (then no `le` filter)."""
    value = round(seconds * units_per_second, 9)
    if not math.isfinite(value) or value <= 0 or value >= 1e15:
        return None
    if value == int(value):
        return f"{int(value)}(?:\\.0+)?"
    text = repr(value)
    return None if "e" in text else f"{regex_literal(text)}0*"


def le_matcher(buckets: frozenset[float] | None, units_per_second: float) -> str | None:
    """`le=~"..."` selecting the given buckets and +Inf; None: select every bucket."""
    if buckets is None:
        return None
    patterns = [_le_value_pattern(b, units_per_second) for b in sorted(buckets)]
    if any(p is None for p in patterns):
        return None
    return "le=~" + string_literal("|".join([*(p for p in patterns if p), regex_literal("+Inf")]))


def histogram_promql(
    family: HistogramFamily,
    keys: Sequence[RevisionKey],
    window_seconds: float,
    buckets: frozenset[float] | None = None,
) -> str:
    group = ", ".join((*family.labels.group_by, "le"))
    le = le_matcher(buckets, family.units_per_second)
    selector = _selector(family.bucket_metric, [*family.labels.matchers(keys), *([le] if le else [])])
    return f"sum by ({group}) ({window_increase(selector, window_seconds)})"


def family_queries(query: BuiltinQuery) -> list[FamilyQuery]:
    """The queries answering a builtin batch, in the order `measurements` expects their rows."""
    keys = sorted(query.revisions)
    spec = query.dialect
    if query.metric == BuiltinMetric.ERROR_RATE:
        families = [spec.requests] + ([spec.activator] if spec.activator is not None else [])
        return [
            FamilyQuery(f.component, f.metric, counter_promql(f, keys, query.window_seconds))
            for f in families
        ]
    lat = spec.latency
    promql = histogram_promql(lat, keys, query.window_seconds, query.buckets)
    return [FamilyQuery(lat.component, lat.bucket_metric, promql)]


def _sum_by_key(
    family: CounterFamily, rows: Sequence[Sample], keys: frozenset[RevisionKey]
) -> dict[RevisionKey, tuple[float, float]]:
    """(requests, failures) per wanted revision, unrounded; revisions without a row are absent."""
    totals: dict[RevisionKey, list[float]] = {}
    for row in rows:
        named = family.labels.key_of(row.labels)
        if named is None:
            continue
        key = RevisionKey(*named)
        if key not in keys or math.isnan(row.value):
            continue
        acc = totals.setdefault(key, [0.0, 0.0])
        acc[0] += row.value
        if row.labels.get(family.code_label, "").startswith("5"):
            acc[1] += row.value
    return {k: (v[0], v[1]) for k, v in totals.items()}


def request_counts(
    spec: DialectSpec,
    keys: frozenset[RevisionKey],
    direct_rows: Sequence[Sample],
    activator_rows: Sequence[Sample] | None,
) -> dict[RevisionKey, Measurement]:
    """Requests and failures per revision: the direct counter plus the activator's own errors (see the
    dialects module for why `max(0, activator 5xx - direct 5xx)`)."""
    direct = _sum_by_key(spec.requests, direct_rows, keys)
    activator: dict[RevisionKey, tuple[float, float]] = {}
    if spec.activator is not None and activator_rows is not None:
        activator = _sum_by_key(spec.activator, activator_rows, keys)
    out: dict[RevisionKey, Measurement] = {}
    for key in keys:
        if key not in direct and key not in activator:
            families = spec.requests.metric + (f" or {spec.activator.metric}" if spec.activator else "")
            out[key] = NoData(f"no {families} series for {key} in the window")
            continue
        total, failed = direct.get(key, (0.0, 0.0))
        extra = max(0.0, activator.get(key, (0.0, 0.0))[1] - failed)
        out[key] = evidence.request_counts(total + extra, failed + extra)
    return out


def _edge(le: str) -> float | None:
    try:
        return float(le)
    except ValueError:
        return None


def _missing_bucket(found: Mapping[float, float], buckets: frozenset[float] | None) -> float | None:
    """A bucket the judges read (seconds) that the answer lacks: reading the next one below instead would
    count requests as slow that were not."""
    for wanted in sorted(buckets or ()):
        if not any(math.isclose(edge, wanted, rel_tol=1e-9) for edge in found):
            return wanted
    return None


def latency_histograms(
    spec: DialectSpec,
    keys: frozenset[RevisionKey],
    rows: Sequence[Sample],
    buckets: frozenset[float] | None = None,
) -> dict[RevisionKey, Measurement]:
    """Cumulative bucket counts per revision, edges converted to seconds, +Inf as the total; with `buckets`,
    a revision whose answer lacks one of them is a MeasurementError."""
    family = spec.latency
    by_key: dict[RevisionKey, dict[float, float]] = defaultdict(dict)
    for row in rows:
        named = family.labels.key_of(row.labels)
        edge = _edge(row.labels.get("le", ""))
        if named is None or edge is None or math.isnan(row.value):
            continue
        key = RevisionKey(*named)
        if key in keys:
            by_edge = by_key[key]
            by_edge[edge] = by_edge.get(edge, 0.0) + row.value
    out: dict[RevisionKey, Measurement] = {}
    for key in keys:
        found = by_key.get(key)
        if not found:
            out[key] = NoData(f"no {family.bucket_metric} series for {key} in the window")
            continue
        if math.inf not in found:
            out[key] = MeasurementError(f'{family.bucket_metric} for {key} has no le="+Inf" bucket')
            continue
        # rounding and monotonicity repair as everywhere else (rollout.engine.evidence)
        in_seconds = {edge / family.units_per_second: v for edge, v in found.items()}
        lacking = _missing_bucket(in_seconds, buckets)
        if lacking is not None:
            out[key] = MeasurementError(
                f"{family.bucket_metric} for {key} has no bucket at {lacking:g}s, a threshold the judges read"
            )
            continue
        out[key] = evidence.latency_histogram(in_seconds)
    return out


def measurements(query: BuiltinQuery, rows: Mapping[str, Sequence[Sample]]) -> dict[RevisionKey, Measurement]:
    """Turn the rows of each family query (keyed by metric name) into one Measurement per revision."""
    spec = query.dialect
    if query.metric == BuiltinMetric.ERROR_RATE:
        activator_rows = rows.get(spec.activator.metric) if spec.activator is not None else None
        return request_counts(spec, query.revisions, rows[spec.requests.metric], activator_rows)
    return latency_histograms(spec, query.revisions, rows[spec.latency.bucket_metric], query.buckets)
