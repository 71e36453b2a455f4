"""Traffic for many simulated runs at once, one scrape interval at a time (numpy arrays over runs).

Load: Poisson arrivals per second with rate lambda(t) = lambda0 (1 + 0.3 sin(2 pi (t + phase) / 1 h)), each
request sent to the canary with probability w (the weight in force). Arrivals are drawn per scrape interval:
a sum of independent per-second Poisson counts is Poisson with the summed mean, and the weight only changes
on a scrape boundary, so this is the same law as drawing second by second. The baseline error rate of both
revisions is p0 (1 + 0.5 sin(2 pi (t + phase') / 30 min)); latency buckets per `scenarios`. Every run has its
own phases, drawn from the seed, so runs of different policies with the same seed see the same load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rollout_lab.sim.scenarios import KNATIVE_BUCKETS, SLOW_INDEX, Fault, Scenario, bucket_probabilities

STABLE, CANARY = 0, 1
BUCKETS = len(KNATIVE_BUCKETS) + 1  # disjoint buckets including +Inf


@dataclass(frozen=True)
class LoadModel:
    rps: float
    diurnal: float = 0.3
    diurnal_period: float = 3600.0
    error_swing: float = 0.5
    error_period: float = 1800.0

    def expected_requests(self, start: np.ndarray | float, seconds: float, phase: np.ndarray) -> np.ndarray:
        """Integral of lambda(t) over [start, start + seconds) for each run."""
        k = 2.0 * math.pi / self.diurnal_period
        a = np.asarray(start) + phase
        swing = self.diurnal / k * (np.cos(k * a) - np.cos(k * (a + seconds)))
        return np.asarray(self.rps * (seconds + swing))

    def baseline_error(self, scenario: Scenario, at: np.ndarray | float, phase: np.ndarray) -> np.ndarray:
        k = 2.0 * math.pi / self.error_period
        return np.asarray(
            scenario.baseline_error * (1.0 + self.error_swing * np.sin(k * (np.asarray(at) + phase)))
        )


@dataclass
class IntervalTraffic:
    """What happened in one scrape interval, per run, arm and pod slot."""

    requests: np.ndarray  # (runs, 2, pods) int
    failures: np.ndarray  # (runs, 2, pods) int
    buckets: np.ndarray  # (runs, 2, pods, BUCKETS) int, disjoint buckets
    stable_error: np.ndarray  # (runs,) baseline error rate in force (stable's failure probability)


class TrafficSource:
    """Draws one scrape interval of traffic for all runs."""

    def __init__(self, load: LoadModel, scenario: Scenario, runs: int, pods: int, rng: np.random.Generator):
        self.load = load
        self.scenario = scenario
        self.pods = pods
        self.rng = rng
        self.load_phase = rng.uniform(0.0, load.diurnal_period, runs)
        self.error_phase = rng.uniform(0.0, load.error_period, runs)
        self.stable_buckets = bucket_probabilities(Fault())
        self._canary_cache: dict[float, np.ndarray] = {}

    def canary_buckets(self, cold_fraction: float) -> np.ndarray:
        key = round(cold_fraction, 3)
        if key not in self._canary_cache:
            self._canary_cache[key] = bucket_probabilities(self.scenario.canary, key)
        return self._canary_cache[key]

    def draw(
        self, start: float, seconds: float, weights: np.ndarray, cold_fraction: np.ndarray
    ) -> IntervalTraffic:
        """`weights`: canary share in [0, 1] per run; `cold_fraction`: share of the interval each run's canary
        spends in a cold-start window."""
        rng = self.rng
        runs = weights.shape[0]
        total = rng.poisson(self.load.expected_requests(start, seconds, self.load_phase))
        canary = rng.binomial(total, weights)
        per_arm = np.stack([total - canary, canary], axis=1)  # (runs, 2)
        share = np.full(self.pods, 1.0 / self.pods)
        requests = rng.multinomial(per_arm, share)  # (runs, 2, pods)
        base = self.load.baseline_error(self.scenario, start + seconds / 2.0, self.error_phase)
        p = np.stack(
            [
                base,
                np.minimum(
                    1.0, base * self.scenario.canary.error_multiplier + self.scenario.canary.error_added
                ),
            ],
            axis=1,
        )
        failures = rng.binomial(requests, p[:, :, None])
        probs = np.empty((runs, 2, BUCKETS))
        probs[:, STABLE] = self.stable_buckets
        if self.scenario.canary.cold_share > 0.0:
            for i in range(runs):
                probs[i, CANARY] = self.canary_buckets(float(cold_fraction[i]))
        else:
            probs[:, CANARY] = self.canary_buckets(0.0)
        buckets = rng.multinomial(requests, probs[:, :, None, :])
        return IntervalTraffic(requests=requests, failures=failures, buckets=buckets, stable_error=base)


def slow_counts(traffic: IntervalTraffic) -> np.ndarray:
    """(runs, 2) requests slower than SLOW_SECONDS."""
    return np.asarray(traffic.buckets[:, :, :, SLOW_INDEX + 1 :].sum(axis=(2, 3)))
