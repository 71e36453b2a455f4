"""PromQL's increase() over a range, as Prometheus computes it (promql/functions.go, extrapolatedRate), for
the simulated Prometheus: only the samples inside (start, end] count; their increase (a drop is a counter
reset) is extrapolated towards the range's edges, fully when the gap to an edge is shorter than 1.1 average
sample intervals, else by half an interval; then, towards the start, never past the moment the counter would
have been zero. A series with fewer than two samples in the range has no result. Summed over series with
rollout.engine.evidence's `sum_increases`, as `sum(increase(x[range]))` does."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from rollout.engine.evidence import Sample


def extrapolated_increase(samples: Sequence[Sample], start: float, end: float) -> float | None:
    inside = [(t, v) for t, v in samples if start < t <= end and not math.isnan(v)]
    if len(inside) < 2:
        return None
    raw = 0.0
    for (_, before), (_, after) in itertools.pairwise(inside):
        raw += after - before if after >= before else after
    first_t, first_v = inside[0]
    last_t = inside[-1][0]
    sampled = last_t - first_t
    if sampled <= 0:
        return None
    average = sampled / (len(inside) - 1)
    to_start, to_end = first_t - start, end - last_t
    threshold = average * 1.1
    to_start = to_start if to_start < threshold else average / 2
    if raw > 0 and first_v >= 0:
        to_zero = sampled * (first_v / raw)  # the counter cannot have been below zero before the range
        to_start = min(to_start, to_zero)
    to_end = to_end if to_end < threshold else average / 2
    return raw * (sampled + to_start + to_end) / sampled
