"""Named scenarios for the simulator: how the canary differs from stable (a fault model per revision).

Latency is lognormal (median 50 ms, sigma 0.8) counted into Knative's queue-proxy buckets; the error rate is a
baseline shared by both revisions that drifts +-50% over time; a scenario changes the canary only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Knative queue-proxy latency buckets (ms -> s); the +Inf bucket is implicit.
KNATIVE_BUCKETS = tuple(
    ms / 1000.0
    for ms in (
        5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500,
        600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
    )
)  # fmt: skip
MEDIAN_SECONDS = 0.05
SIGMA = 0.8
SLOW_SECONDS = 0.5  # requests slower than this count as harmed in the blast radius (Flagger's p99 SLO)
SLOW_INDEX = KNATIVE_BUCKETS.index(SLOW_SECONDS)
Z99 = 2.3263478740408408


@dataclass(frozen=True)
class Fault:
    """How one revision behaves relative to the baseline."""

    error_multiplier: float = 1.0
    error_added: float = 0.0  # absolute, 0.05 = +5 percentage points
    latency_scale: float = 1.0  # every request this many times slower
    latency_sigma: float = SIGMA  # a wider sigma moves the tail and keeps the median
    tail_share: float = 0.0  # this share of requests gets `tail_added` seconds more
    tail_added: float = 0.0
    cold_seconds: float = 0.0  # after each weight increase, for this long (new pods starting) ...
    cold_share: float = 0.0  # ... this share of the revision's requests ...
    cold_added: float = 0.0  # ... waits this many seconds more

    def error_rate(self, baseline: float) -> float:
        return min(1.0, baseline * self.error_multiplier + self.error_added)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    canary: Fault = field(default_factory=Fault)
    baseline_error: float = 0.001
    regression: bool = False  # a canary that should be rolled back (missing it costs 1 h at 100%)


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    return 0.5 * (1.0 + math.erf(math.log(x / median) / (sigma * math.sqrt(2.0))))


def latency_cdf(fault: Fault, cold_fraction: float = 0.0) -> np.ndarray:
    """P(latency <= edge) at every Knative bucket edge."""
    median = MEDIAN_SECONDS * fault.latency_scale
    out = np.empty(len(KNATIVE_BUCKETS))
    cold = cold_fraction * fault.cold_share
    for i, edge in enumerate(KNATIVE_BUCKETS):
        base = _lognormal_cdf(edge, median, fault.latency_sigma)
        tail = _lognormal_cdf(edge - fault.tail_added, median, fault.latency_sigma)
        normal = (1.0 - fault.tail_share) * base + fault.tail_share * tail
        slowed = _lognormal_cdf(edge - fault.cold_added, median, fault.latency_sigma)
        out[i] = (1.0 - cold) * normal + cold * slowed
    return out


def bucket_probabilities(fault: Fault, cold_fraction: float = 0.0) -> np.ndarray:
    """Probabilities of the 27 disjoint buckets (26 edges and +Inf)."""
    cdf = latency_cdf(fault, cold_fraction)
    probs = np.diff(np.concatenate(([0.0], cdf, [1.0])))
    probs = np.clip(probs, 0.0, None)
    return np.asarray(probs / probs.sum())


def slow_share(fault: Fault) -> float:
    """Share of requests slower than SLOW_SECONDS (no cold start)."""
    return float(1.0 - latency_cdf(fault)[SLOW_INDEX])


# A sigma that raises p99 by 20% and keeps p50: exp(Z99 s') = 1.2 exp(Z99 s).
_TAIL_SIGMA = SIGMA + math.log(1.2) / Z99

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("aa", "A/A: the canary is the same as stable"),
        Scenario(
            "errors-x2", "the canary fails twice as often", Fault(error_multiplier=2.0), regression=True
        ),
        Scenario(
            "errors-plus-5pp", "5 more failed requests in 100", Fault(error_added=0.05), regression=True
        ),
        Scenario(
            "errors-100pct", "every canary request fails (100% 5xx)", Fault(error_added=1.0), regression=True
        ),
        Scenario(
            "latency-x1.2", "every canary request 20% slower", Fault(latency_scale=1.2), regression=True
        ),
        Scenario(
            "latency-p99-x1.2",
            "tail only: canary p99 +20%, p50 unchanged",
            Fault(latency_sigma=_TAIL_SIGMA),
            regression=True,
        ),
        Scenario(
            "latency-tail",
            "tail only: 1% of canary requests +500 ms",
            Fault(tail_share=0.01, tail_added=0.5),
            regression=True,
        ),
        Scenario(
            "canary-better",
            "the canary fails half as often and is 10% faster",
            Fault(error_multiplier=0.5, latency_scale=0.9),
        ),
        Scenario(
            "cold-start",
            "no regression, but for 20 s after each weight increase 5% of canary requests wait 1.5 s more",
            Fault(cold_seconds=20.0, cold_share=0.05, cold_added=1.5),
        ),
        Scenario("aa-base1pct", "A/A with a 1% baseline error rate", baseline_error=0.01),
        Scenario(
            "errors-x2-base1pct",
            "errors x2 on a 1% baseline error rate",
            Fault(error_multiplier=2.0),
            baseline_error=0.01,
            regression=True,
        ),
    )
}
