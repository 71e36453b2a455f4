"""Evidence accounting: counter samples in, per-interval integer counts out. Pure functions.

Request counters and histogram buckets are per-pod series: pods come and go (a series appears or stops),
containers restart (the counter drops to zero and climbs again), scrapes are missed (a gap), and
Prometheus' `increase()` extrapolates to the window's edges (a non-integer). A plain sum of the series
would read a departing pod as a counter reset; so increases are taken per series, with reset handling, then
summed, then rounded once.

Series semantics (as Prometheus computes `increase()` without extrapolation):
- the increase over (start, end] runs from the series' last sample at or before `start` (its base) to its
  last sample at or before `end`, adding each step, where a drop is a reset and the step is the new value;
- a series with no sample at or before `start` was born inside the window: its base is zero, so the
  requests it served before its first scrape count (a new pod's counter starts at zero);
- a missed scrape just moves counts into the next window, because the base is the last sample seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from rollout.engine.observations import LatencyHistogram, RequestCounts

Sample = tuple[float, float]  # (unix seconds, counter value)


def series_increase(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """Increase of one counter series over (start, end]; None when it has no sample at or before `end`.
    `samples` must be sorted by time."""
    base = 0.0
    total = 0.0
    seen = False
    for t, value in samples:
        if t > end:
            break
        if math.isnan(value):
            continue  # a stale marker or a failed read: no sample
        if t <= start:
            base = value
            seen = True
            continue
        step = value - base
        total += step if step >= 0 else value
        base = value
        seen = True
    return total if seen else None


def sum_increases(
    series: Iterable[Sequence[Sample]],
    start: float,
    end: float,
    increase: Callable[[Sequence[Sample], float, float], float | None] = series_increase,
) -> float | None:
    """Sum of the per-series increases (by `increase`, `series_increase` unless told); None when no series had
    one."""
    out: float | None = None
    for samples in series:
        inc = increase(samples, start, end)
        if inc is not None:
            out = inc if out is None else out + inc
    return out


def round_count(value: float) -> int:
    """An extrapolated increase as a whole number of requests (never negative, NaN as zero)."""
    if math.isnan(value) or value <= 0:
        return 0
    return math.floor(value + 0.5)


def request_counts(requests: float, failures: float) -> RequestCounts:
    """Rounded counts with failures <= requests (extrapolation can break that by a fraction)."""
    n = round_count(requests)
    return RequestCounts(requests=n, failures=min(round_count(failures), n))


def latency_histogram(buckets: Mapping[float, float], total: float | None = None) -> LatencyHistogram:
    """Cumulative bucket increases keyed by `le` (seconds; math.inf for +Inf) as a LatencyHistogram: rounded,
    made non-decreasing (rounding and extrapolation can break monotonicity, as PromQL's
    histogram_quantile also repairs), and capped by the total. The total is the +Inf bucket, or `total`
    (the _count series) when there is no +Inf bucket."""
    finite = sorted((le, v) for le, v in buckets.items() if math.isfinite(le))
    inf = buckets.get(math.inf)
    count = round_count(inf if inf is not None else (total if total is not None else 0.0))
    cumulative: list[int] = []
    running = 0
    for _, value in finite:
        running = max(running, round_count(value))
        cumulative.append(running)
    count = max(count, running)
    return LatencyHistogram(edges=tuple(le for le, _ in finite), cumulative=tuple(cumulative), total=count)


def histogram_increase(
    series: Mapping[float, Iterable[Sequence[Sample]]], start: float, end: float
) -> LatencyHistogram | None:
    """Per-`le` sums of per-series bucket increases over (start, end], as a LatencyHistogram (None when no
    bucket series had a sample)."""
    sums: dict[float, float] = {}
    for le, per_series in series.items():
        inc = sum_increases(per_series, start, end)
        if inc is not None:
            sums[le] = inc
    if not sums:
        return None
    return latency_histogram(sums)
