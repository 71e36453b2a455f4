"""When a rollout next needs the controller: analysis ticks aligned to the interval (so rollouts due together
share one query per template), bake ends, gate timers, deadlines. Pure functions of the Rollout and `now`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rollout.api.rollout import Phase, Rollout
from rollout.engine.steps import engine_steps, step_at
from rollout.engine.windows import analysis_since

_US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def floor_tick(t: datetime, interval: float) -> datetime:
    step = max(round(interval * _US), 1)
    return _from_us(_to_us(t) // step * step)


def ceil_tick(t: datetime, interval: float) -> datetime:
    step = max(round(interval * _US), 1)
    return _from_us(-(-_to_us(t) // step) * step)


@dataclass(frozen=True)
class Tick:
    """One analysis window. Two ticks are the same window whatever `ready` says (it depends on `now`)."""

    start: datetime  # window [start, end)
    end: datetime
    ready: bool = field(compare=False)  # True: the window has ended by `now` and can be measured


def window_valid(rollout: Rollout, window: Tick) -> bool:
    """A measured window may be judged for this rollout now: analysis runs, and the window lies wholly within
    the current step's traffic and after the last window analysed (it may be older than the latest complete
    window, e.g. when the source answered slowly)."""
    since = analysis_since(rollout, whole_seconds=True)
    return since is not None and window.start >= since


def analysis_tick(rollout: Rollout, now: datetime) -> Tick | None:
    """The analysis window this rollout wants next, aligned to multiples of its interval since the epoch.
    None when analysis does not run (not Progressing/Paused, or the step's traffic is not served yet)."""
    since = analysis_since(rollout, whole_seconds=True)
    if since is None:
        return None
    interval = rollout.spec.policy.spec.analysis.interval
    due_at = since + timedelta(seconds=interval)
    latest = floor_tick(now, interval)
    if latest >= due_at:
        return Tick(latest - timedelta(seconds=interval), latest, True)
    end = ceil_tick(due_at, interval)
    return Tick(end - timedelta(seconds=interval), end, False)


def next_wakeup(rollout: Rollout, now: datetime) -> datetime | None:
    """The earliest moment something time-based may change this rollout's decision (bake end, gate timer,
    deadlines, next analysis tick); None for a finished rollout."""
    status = rollout.status
    if status.phase.terminal:
        return None
    policy = rollout.spec.policy.spec
    times: list[datetime] = []
    if status.started_at is not None:
        times.append(status.started_at + timedelta(seconds=policy.deadlines.rollout))
        if status.phase == Phase.PENDING:
            times.append(status.started_at + timedelta(seconds=policy.deadlines.candidate_ready))
    steps = engine_steps(policy)
    if steps and status.step_started_at is not None and status.phase in (Phase.PROGRESSING, Phase.PAUSED):
        step = step_at(steps, status.current_step)
        if step.is_gate and step.gate_duration is not None:
            times.append(status.step_started_at + timedelta(seconds=step.gate_duration))
        elif not step.is_gate:
            times.append(status.step_started_at + timedelta(seconds=step.bake))
    tick = analysis_tick(rollout, now)
    if tick is not None:
        times.append(tick.end)
    future = [t for t in times if t > now]
    return min(future, default=None)
