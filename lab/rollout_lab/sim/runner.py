"""The virtual-clock loop: many runs of one (driver, scenario, load) in lockstep, one scrape interval per step.

Traffic and counters are numpy arrays over runs; each run's driver then reads its own view and decides.
Per run it records the outcome, the time to decision and the blast radius: the harm the canary caused until
the decision, sum over intervals of (bad_C - n_C p_S), where bad requests are failed ones and ones slower than
500 ms, p_S is stable's probability of each, and a regression that was promoted adds the expected harm of one
hour at 100%.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rollout.engine.observations import Measurement
from rollout_lab.sim.counters import CounterStore, ScrapeModel, baseline_counts, expected_histogram
from rollout_lab.sim.drivers import PROMOTED, Driver, TimelineEntry
from rollout_lab.sim.scenarios import Fault, Scenario, bucket_probabilities, slow_share
from rollout_lab.sim.traffic import CANARY, LoadModel, TrafficSource, slow_counts

UNDECIDED = "undecided"
MISSED_REGRESSION_SECONDS = 3600.0


@dataclass(frozen=True)
class Baseline:
    """Stable's measurements over the hour before the rollout (the engine picks latency thresholds from it)."""

    requests: Measurement
    latency: Measurement


@dataclass(frozen=True)
class RunResult:
    run: int
    outcome: str  # rolledBack | promoted | undecided (or another terminal phase)
    decision_seconds: float | None
    blast_radius: float
    canary_requests: int
    timeline: tuple[TimelineEntry, ...] = ()


DriverFactory = Callable[[int, Baseline], Driver]


def _baselines(scenario: Scenario, rps: float, runs: int, seed: int) -> list[Baseline]:
    rng = np.random.default_rng([seed, 1])
    hour = max(int(rps * 3600), 1)
    probs = bucket_probabilities(Fault())
    return [
        Baseline(
            requests=baseline_counts(hour, scenario.baseline_error, rng),
            latency=expected_histogram(probs, hour, rng),
        )
        for _ in range(runs)
    ]


def missed_harm(load: LoadModel, scenario: Scenario, source: TrafficSource, starts: np.ndarray) -> np.ndarray:
    """Expected harm of one hour with the canary at 100% from `starts` (one per run)."""
    step = 60.0
    times = starts[:, None] + np.arange(0.0, MISSED_REGRESSION_SECONDS, step)[None, :]
    requests = load.expected_requests(times, step, source.load_phase[:, None])
    base = load.baseline_error(scenario, times + step / 2, source.error_phase[:, None])
    fault = scenario.canary
    extra_errors = np.minimum(1.0, base * fault.error_multiplier + fault.error_added) - base
    extra_slow = slow_share(fault) - slow_share(Fault())
    return np.asarray(np.sum(requests * (extra_errors + extra_slow), axis=1))


def simulate(
    make_driver: DriverFactory,
    scenario: Scenario,
    rps: float,
    runs: int,
    seed: int,
    *,
    scrape: ScrapeModel | None = None,
    pods: int = 2,
    max_seconds: float = 7200.0,
    trace_runs: int = 0,
) -> list[RunResult]:
    scrape = scrape or ScrapeModel()
    load = LoadModel(rps=rps)
    rng = np.random.default_rng(seed)
    source = TrafficSource(load, scenario, runs, pods, rng)
    store = CounterStore(runs, pods, scrape, rng)
    drivers = [make_driver(i, b) for i, b in enumerate(_baselines(scenario, rps, runs, seed))]
    views = [store.view(i, scenario.canary.cold_seconds) for i in range(runs)]
    for i, d in enumerate(drivers):
        d.tick(0.0, views[i])
    dt = scrape.interval
    stable_slow = slow_share(Fault())
    blast = np.zeros(runs)
    exposure = np.zeros(runs, dtype=np.int64)
    active = np.ones(runs, dtype=bool)
    weights = np.array([d.weight for d in drivers], dtype=float)
    last_raise = np.full(runs, -math.inf)
    t = 0.0
    while t < max_seconds and active.any():
        cold = np.clip((last_raise + scenario.canary.cold_seconds - t) / dt, 0.0, 1.0)
        traffic = source.draw(t, dt, np.where(active, weights / 100.0, 0.0), cold)
        n_c = traffic.requests[:, CANARY].sum(axis=-1)
        f_c = traffic.failures[:, CANARY].sum(axis=-1)
        harm = (f_c - n_c * traffic.stable_error) + (slow_counts(traffic)[:, CANARY] - n_c * stable_slow)
        blast += np.where(active, harm, 0.0)
        exposure += np.where(active, n_c, 0)
        store.advance(traffic)
        t += dt
        store.scrape(t)
        for i in np.flatnonzero(active).tolist():
            d = drivers[i]
            d.tick(t, views[i])
            if d.weight > weights[i] and not d.warmed:
                last_raise[i] = t
            weights[i] = d.weight
            if d.outcome is not None:
                active[i] = False
    ends = np.array([d.outcome.at if d.outcome is not None else t for d in drivers])
    promoted = np.array([d.outcome is not None and d.outcome.kind == PROMOTED for d in drivers])
    if scenario.regression:
        blast += np.where(promoted, missed_harm(load, scenario, source, ends), 0.0)
    results = []
    for i, d in enumerate(drivers):
        o = d.outcome
        harm = float(blast[i])
        results.append(
            RunResult(
                run=i,
                outcome=o.kind if o is not None else UNDECIDED,
                decision_seconds=o.at if o is not None else None,
                blast_radius=harm,
                canary_requests=int(exposure[i]),
                timeline=tuple(d.timeline) if i < trace_runs else (),
            )
        )
    return results
