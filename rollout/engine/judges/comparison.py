"""Sequential comparison judge: canary against stable on the error rate, or on the share of requests slower
than latency thresholds fixed when the rollout starts. Anytime-valid: it may be evaluated after every interval
and the chance that it ever rolls back a canary that is no worse than psi0 = 1 + maxRelativeDegradation stays
below alpha (Ville's inequality on a mixture test martingale; see `sequential` and `series`).

Pure: (rule, state, one interval's measurements) -> (new state, outcome). The state is JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from rollout.engine.judges.sequential import log_mean_exp
from rollout.engine.judges.series import Form, Stream, StreamReport
from rollout.engine.observations import LatencyHistogram, Measurement, RequestCounts

DEFAULT_QUANTILES = (0.5, 0.9, 0.99)
DEFAULT_BETA = (
    0.05  # level of the promotion side: chance that a step ends early on a canary worse than psi_max
)


class Kind(StrEnum):
    ERRORS = "errors"
    LATENCY = "latency"


@dataclass(frozen=True)
class ComparisonRule:
    metric: str
    kind: Kind
    alpha: float
    psi0: float = 1.0  # 1 + maxRelativeDegradation: the null is "canary <= psi0 x stable"
    psi_max: float | None = 1.5  # 1 + earlyStopMargin; None: steps never end early on this metric
    beta: float = DEFAULT_BETA
    latency_edges: tuple[float, ...] | None = None  # seconds; None: from stable's quantiles at the start
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    error_gate: float | None = None  # absolute level the canary's error rate may be shown to be below


@dataclass(frozen=True)
class ComparisonOutcome:
    log_m: float  # log of the regression test martingale (average over streams)
    p_value: float  # anytime-valid p-value for "no regression": min over time of 1/M
    rollback: bool
    no_worse: bool  # every stream shows the canary no worse than psi_max (or under its gate) in this step
    waiting: bool  # nothing could be learned yet (thresholds not chosen, no traffic on an arm)
    streams: tuple[StreamReport, ...]

    @property
    def worst(self) -> StreamReport | None:
        return max(self.streams, key=lambda s: s.log_m) if self.streams else None


@dataclass
class ComparisonState:
    streams: list[Stream] = field(default_factory=list)
    step: int = -1
    intervals: int = 0
    max_log_m: float = 0.0
    rolled_back: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "streams": [s.to_dict() for s in self.streams],
            "step": self.step,
            "intervals": self.intervals,
            "maxLogM": self.max_log_m,
            "rolledBack": self.rolled_back,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComparisonState:
        return cls(
            streams=[Stream.from_dict(s) for s in data.get("streams", [])],
            step=int(data.get("step", -1)),
            intervals=int(data.get("intervals", 0)),
            max_log_m=float(data.get("maxLogM", 0.0)),
            rolled_back=bool(data.get("rolledBack", False)),
        )


def choose_edges(histogram: LatencyHistogram, quantiles: tuple[float, ...]) -> tuple[float, ...]:
    """Bucket edges just above the histogram's quantiles (the +Inf bucket excluded), without repeats."""
    chosen: list[float] = []
    for q in quantiles:
        value = histogram.quantile(q)
        if value is None:
            continue
        edge = next((e for e in histogram.edges if e >= value - 1e-12 and math.isfinite(e)), None)
        if edge is not None and edge not in chosen:
            chosen.append(edge)
    return tuple(sorted(chosen))


def snap_edges(wanted: tuple[float, ...], histogram: LatencyHistogram) -> tuple[float, ...]:
    """User thresholds moved to the smallest bucket edge at or above them (slow counts need an edge)."""
    out: list[float] = []
    for w in wanted:
        edge = next((e for e in histogram.edges if e >= w - 1e-12 and math.isfinite(e)), None)
        if edge is not None and edge not in out:
            out.append(edge)
    return tuple(sorted(out))


def _share_above(histogram: LatencyHistogram, edge: float) -> float | None:
    return histogram.slow(edge) / histogram.total if histogram.total > 0 else None


def _latency_streams(
    rule: ComparisonRule, reference: LatencyHistogram, edges: tuple[float, ...]
) -> list[Stream]:
    streams = []
    for edge in edges:
        share = _share_above(reference, edge)
        gate = rule.psi_max * share if rule.psi_max is not None and share else None
        streams.append(
            Stream.new(
                f"slower than {edge:g}s",
                Form.TWO_BINOMIAL,
                rule.psi0,
                rule.psi_max,
                edge=edge,
                baseline_share=share,
                gate_level=gate if gate is not None and gate < 1.0 else None,
            )
        )
    return streams


def start(rule: ComparisonRule, baseline: Measurement | None = None) -> ComparisonState:
    """A fresh state. `baseline` is stable's measurement over a reference window before the rollout (e.g.
    the last hour); latency thresholds come from it. Without one, a latency judge picks its thresholds from
    the first interval in which stable has traffic and starts testing from the next one."""
    state = ComparisonState()
    if rule.kind is Kind.ERRORS:
        share = None
        if isinstance(baseline, RequestCounts) and baseline.requests > 0:
            share = baseline.failures / baseline.requests
        state.streams = [
            Stream.new("errors", Form.CONDITIONAL, rule.psi0, rule.psi_max, baseline_share=share)
        ]
        state.streams[0].gate_level = rule.error_gate
    elif isinstance(baseline, LatencyHistogram) and baseline.total > 0:
        state.streams = _latency_streams(rule, baseline, _edges_for(rule, baseline))
    return state


def _edges_for(rule: ComparisonRule, reference: LatencyHistogram) -> tuple[float, ...]:
    if rule.latency_edges:
        return snap_edges(tuple(rule.latency_edges), reference)
    return choose_edges(reference, rule.quantiles)


def _counts(measurement: Measurement, stream: Stream) -> tuple[int, int] | None:
    if isinstance(measurement, RequestCounts) and stream.edge is None:
        n = max(measurement.requests, 0)
        return n, min(max(measurement.failures, 0), n)
    if isinstance(measurement, LatencyHistogram) and stream.edge is not None:
        n = max(measurement.total, 0)
        return n, min(measurement.slow(stream.edge), n)
    return None


def update(
    rule: ComparisonRule,
    state: ComparisonState,
    canary: Measurement,
    stable: Measurement,
    step: int,
) -> tuple[ComparisonState, ComparisonOutcome]:
    """Fold one interval into the judge. `step` is the index of the step whose traffic produced the interval;
    a new index restarts the promotion side (evidence that a step may end is gathered at that step)."""
    new = replace(state, streams=[s.copy() for s in state.streams])
    return new, fold(rule, new, canary, stable, step)


def fold(
    rule: ComparisonRule, new: ComparisonState, canary: Measurement, stable: Measurement, step: int
) -> ComparisonOutcome:
    """`update` on a state the caller owns (changed in place)."""
    if step != new.step:
        for s in new.streams:
            s.start_step()
        new.step = step
    waiting = True
    if not new.streams and rule.kind is Kind.LATENCY and isinstance(stable, LatencyHistogram):
        # No reference window: this interval chooses the thresholds and is not itself tested.
        if stable.total > 0:
            new.streams = _latency_streams(rule, stable, _edges_for(rule, stable))
    else:
        for s in new.streams:
            c, st = _counts(canary, s), _counts(stable, s)
            if c is None or st is None:
                continue
            s.add(c[0], c[1], st[0], st[1], rule.psi0)
            s.update_bounds(rule.alpha)
            waiting = waiting and (c[0] == 0 or st[0] == 0)
        new.intervals += 1
    return _outcome(rule, new, waiting)


def _outcome(rule: ComparisonRule, state: ComparisonState, waiting: bool) -> ComparisonOutcome:
    reports = tuple(s.report(rule.psi0, rule.psi_max, rule.beta) for s in state.streams)
    log_m = log_mean_exp([r.log_m for r in reports]) if reports else 0.0
    state.max_log_m = max(state.max_log_m, log_m)
    if log_m >= math.log(1.0 / rule.alpha):
        state.rolled_back = True
    return ComparisonOutcome(
        log_m=log_m,
        p_value=min(1.0, math.exp(-state.max_log_m)),
        rollback=state.rolled_back,
        no_worse=bool(reports) and all(r.no_worse for r in reports) and not state.rolled_back,
        waiting=waiting,
        streams=reports,
    )
