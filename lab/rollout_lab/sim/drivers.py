"""The seam between the simulator and a decision algorithm, and the two baselines it is compared with.

A driver is told the time at every scrape boundary and reads metrics through a `RunView`; it keeps the canary
weight it wants and, once it has decided, the outcome. The simulator applies the weight to the next interval.

- `FlaggerDriver`: Flagger's documented canary analysis (fluxcd/flagger; ../shared/research/peers.md):
  every `interval` a tick; the first tick only sets the weight to `stepWeight` (no check); each later tick
  first tests `failedChecks >= threshold` (rollback), then checks the canary alone over the last interval:
  request success rate >= 99% and p99 latency <= 500 ms (histogram_quantile over the buckets); an empty
  result (no requests: NaN) is a failed check; a failed tick adds one to the cumulative failed checks and
  holds the weight; a passing tick adds `stepWeight` up to `maxWeight`, and at `maxWeight` promotes.
- `KnativeDurationDriver`: Knative's `rollout-duration`: 1% at once, then equal steps until 100% at the end
  of the duration; no metrics, never rolls back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from rollout.engine.observations import LatencyHistogram, RequestCounts
from rollout_lab.sim.counters import RunView
from rollout_lab.sim.traffic import CANARY

ROLLED_BACK = "rolledBack"
PROMOTED = "promoted"


@dataclass(frozen=True)
class Outcome:
    kind: str  # ROLLED_BACK | PROMOTED
    at: float  # seconds since the rollout started
    reason: str = ""


@dataclass(frozen=True)
class TimelineEntry:
    at: float
    weight: int
    note: str


class Driver(Protocol):
    name: str
    weight: int  # canary percent wanted now
    outcome: Outcome | None
    timeline: list[TimelineEntry]
    warmed: bool  # the last raise of `weight` found the pods its share needs ready (no cold start after it)

    def tick(self, now: float, view: RunView) -> None: ...


@dataclass
class FlaggerDriver:
    interval: float = 60.0
    threshold: int = 5
    step_weight: int = 10
    max_weight: int = 50
    min_success_percent: float = 99.0
    max_p99_ms: float = 500.0
    name: str = "flagger"
    weight: int = 0
    outcome: Outcome | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    warmed: bool = False  # Knative starts pods when the share grows
    failed_checks: int = 0
    _ticks: int = 0

    def tick(self, now: float, view: RunView) -> None:
        if self.outcome is not None or now + 1e-9 < self._ticks * self.interval:
            return
        self._ticks += 1
        if self._ticks == 1:
            self.weight = self.step_weight
            self.timeline.append(TimelineEntry(now, self.weight, "first tick: weight set, no check"))
            return
        if self.failed_checks >= self.threshold:
            self._finish(
                now, ROLLED_BACK, f"{self.failed_checks} failed checks >= threshold {self.threshold}"
            )
            return
        end = view.visible_until(now)
        start = end - self.interval
        counts = view.requests(CANARY, start, end)
        hist = view.histogram(CANARY, start, end)
        success = None
        if isinstance(counts, RequestCounts) and counts.requests > 0:
            success = 100.0 * (counts.requests - counts.failures) / counts.requests
        p99 = hist.quantile(0.99) if isinstance(hist, LatencyHistogram) else None
        p99_ms = None if p99 is None else 1000.0 * p99
        failed = []
        if success is None or math.isnan(success) or success < self.min_success_percent:
            failed.append(f"success rate {_fmt(success)}% < {self.min_success_percent:g}%")
        if p99_ms is None or p99_ms > self.max_p99_ms:
            failed.append(f"p99 {_fmt(p99_ms)} ms > {self.max_p99_ms:g} ms")
        if failed:
            self.failed_checks += 1
            self.timeline.append(
                TimelineEntry(now, self.weight, f"check failed ({self.failed_checks}): " + "; ".join(failed))
            )
            return
        if self.weight < self.max_weight:
            self.weight = min(self.weight + self.step_weight, self.max_weight)
            self.timeline.append(
                TimelineEntry(
                    now, self.weight, f"checks passed (success {_fmt(success)}%, p99 {_fmt(p99_ms)} ms)"
                )
            )
            return
        self._finish(now, PROMOTED, "checks passed at maxWeight")

    def _finish(self, now: float, kind: str, reason: str) -> None:
        self.weight = 100 if kind == PROMOTED else 0
        self.outcome = Outcome(kind, now, reason)
        self.timeline.append(TimelineEntry(now, self.weight, f"{kind}: {reason}"))


@dataclass
class KnativeDurationDriver:
    duration: float = 300.0
    step_every: float = 15.0
    name: str = "knative-rollout-duration"
    weight: int = 1
    outcome: Outcome | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    warmed: bool = False  # Knative starts pods when the share grows

    def tick(self, now: float, view: RunView) -> None:
        if self.outcome is not None:
            return
        if not self.timeline:
            self.timeline.append(TimelineEntry(0.0, 1, "1% to the new revision"))
        if now + 1e-9 >= self.duration:
            self.weight = 100
            self.outcome = Outcome(PROMOTED, now, "rollout-duration elapsed")
            self.timeline.append(TimelineEntry(now, 100, "100%: rollout done (no analysis)"))
            return
        steps = math.floor(now / self.step_every + 1e-9)
        total = max(math.floor(self.duration / self.step_every), 1)
        weight = 1 + math.ceil(99 * steps / total)
        if weight != self.weight:
            self.weight = min(weight, 100)
            self.timeline.append(TimelineEntry(now, self.weight, "equal step"))


def _fmt(x: float | None) -> str:
    return "NaN" if x is None else f"{x:.4g}"
