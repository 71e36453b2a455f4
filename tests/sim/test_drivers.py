"""The baselines' algorithms, step by step, on a scripted metric view."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from rollout.engine.observations import LatencyHistogram, Measurement, NoData, RequestCounts
from rollout_lab.sim.drivers import PROMOTED, ROLLED_BACK, FlaggerDriver, KnativeDurationDriver

FAST = LatencyHistogram(edges=(0.1, 0.5, 1.0), cumulative=(99, 100, 100), total=100)
SLOW = LatencyHistogram(edges=(0.1, 0.5, 1.0), cumulative=(50, 90, 100), total=100)


@dataclass
class Scripted:
    """A RunView stand-in: the canary's numbers at each call, and the windows asked for."""

    counts: list[Measurement]
    latency: list[Measurement]
    asked: list[tuple[float, float]] = field(default_factory=list)

    def visible_until(self, now: float) -> float:
        return now - 15.0

    def requests(self, arm: int, start: float, end: float) -> Measurement:
        self.asked.append((start, end))
        return self.counts.pop(0)

    def histogram(self, arm: int, start: float, end: float) -> Measurement:
        return self.latency.pop(0)


def run(driver: Any, view: Scripted, until: float = 900.0) -> None:
    t = 0.0
    while t <= until and driver.outcome is None:
        driver.tick(t, view)
        t += 15.0


def test_flagger_promotes_after_max_weight_with_passing_checks() -> None:
    view = Scripted([RequestCounts(1000, 1)] * 5, [FAST] * 5)
    d = FlaggerDriver()
    run(d, view)
    assert d.outcome is not None and d.outcome.kind == PROMOTED and d.outcome.at == 300.0
    assert [e.weight for e in d.timeline] == [10, 20, 30, 40, 50, 100]
    assert view.asked[0] == (-15.0, 45.0)  # the last minute that Prometheus shows at the tick


def test_flagger_failed_checks_hold_weight_and_roll_back_at_the_next_tick() -> None:
    view = Scripted([RequestCounts(1000, 50)] * 5, [FAST] * 5)
    d = FlaggerDriver()
    run(d, view)
    assert d.outcome is not None and d.outcome.kind == ROLLED_BACK
    assert d.outcome.at == 360.0  # five failed checks at 60..300 s, rollback tested at the start of 360 s
    assert {e.weight for e in d.timeline[:-1]} == {10}
    assert d.failed_checks == 5


def test_flagger_no_data_and_slow_p99_are_failed_checks_and_failures_are_cumulative() -> None:
    counts: list[Measurement] = [NoData(), RequestCounts(0, 0), RequestCounts(100, 0), RequestCounts(100, 0)]
    counts += [RequestCounts(100, 0)] * 4
    latency: list[Measurement] = [FAST, FAST, SLOW, FAST, SLOW, SLOW, FAST, FAST]
    d = FlaggerDriver()
    run(d, Scripted(counts, latency))
    notes = [e.note for e in d.timeline]
    assert "success rate NaN%" in notes[1] and "success rate NaN%" in notes[2]
    assert "p99" in notes[3] and "> 500 ms" in notes[3]
    # Three failures, a pass (the weight moves on), two more: rolled back at the tick after the fifth.
    assert [e.weight for e in d.timeline] == [10, 10, 10, 10, 20, 20, 20, 0]
    assert d.outcome is not None and d.outcome.kind == ROLLED_BACK and d.outcome.at == 420.0
    assert d.failed_checks == 5


def test_knative_rollout_duration_steps_and_never_rolls_back() -> None:
    d = KnativeDurationDriver(duration=300.0)
    run(d, Scripted([], []))
    weights = [e.weight for e in d.timeline]
    assert weights[0] == 1 and weights[-1] == 100
    assert weights == sorted(weights)
    steps = {b - a for a, b in itertools.pairwise(weights[1:-1])}
    assert steps <= {4, 5, 6}  # equal steps, up to rounding
    assert d.outcome is not None and d.outcome.kind == PROMOTED and d.outcome.at == 300.0
