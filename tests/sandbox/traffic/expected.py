"""What a histogram_quantile over exact buckets would return for a known latency distribution: the
reference the measured quantiles are compared with (bucket interpolation included)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def lognormal_cdf(median: float, sigma: float) -> Callable[[float], float]:
    def cdf(x: float) -> float:
        if x <= 0:
            return 0.0
        if sigma == 0:
            return 1.0 if x >= median else 0.0
        return 0.5 * (1.0 + math.erf(math.log(x / median) / (sigma * math.sqrt(2.0))))

    return cdf


def with_tail(body: Callable[[float], float], share: float, extra: float) -> Callable[[float], float]:
    """The CDF when a `share` of requests gets `extra` seconds added."""
    return lambda x: (1 - share) * body(x) + share * body(x - extra)


def histogram_quantile(q: float, bounds: Sequence[float], cdf: Callable[[float], float]) -> float:
    """PromQL's histogram_quantile on the exact bucket fractions of `cdf` (lower bound of the first
    bucket taken as 0, linear interpolation inside the bucket)."""
    previous_bound, previous_fraction = 0.0, 0.0
    for bound in bounds:
        fraction = cdf(bound)
        if fraction >= q:
            if fraction == previous_fraction:
                return bound
            return previous_bound + (bound - previous_bound) * (q - previous_fraction) / (
                fraction - previous_fraction
            )
        previous_bound, previous_fraction = bound, fraction
    return bounds[-1]
