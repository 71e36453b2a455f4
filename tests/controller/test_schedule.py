from datetime import datetime, timedelta

from rollout.api.rollout import Phase, Rollout
from rollout.controller.schedule import Tick, analysis_tick, ceil_tick, floor_tick, next_wakeup, window_valid
from tests.controller.objects import POLICY, rollout
from tests.engine.world import T0  # 2026-11-25T12:00:00Z, a multiple of every interval used here


def running(
    started: datetime,
    *,
    last: datetime | None = None,
    applied: bool = True,
    phase: Phase = Phase.PROGRESSING,
    warmup: str | None = None,
) -> Rollout:
    policy = {**POLICY, "analysis": {"warmup": warmup, "interval": "10s"}} if warmup else None
    r = rollout(phase=phase, policy=policy)
    status = r.status.model_copy(
        update={
            "traffic_applied": applied,
            "step_started_at": started,
            "last_analysis_at": last,
            "started_at": T0,
        }
    )
    return r.model_copy(update={"status": status})


def s(x: float) -> timedelta:
    return timedelta(seconds=x)


def test_ticks_align_to_interval_multiples() -> None:
    assert floor_tick(T0 + s(7.3), 2.5) == T0 + s(5)
    assert ceil_tick(T0 + s(7.3), 2.5) == T0 + s(7.5)
    assert ceil_tick(T0 + s(5), 2.5) == T0 + s(5)


def test_first_window_starts_after_the_step_started_and_is_shared_by_rollouts() -> None:
    # interval 30s (policy default); steps started at different moments wait for the same aligned tick
    a = analysis_tick(running(T0 + s(3.4)), T0 + s(10))
    b = analysis_tick(running(T0 + s(12)), T0 + s(13))
    assert a is not None and b is not None and not a.ready
    assert a.end == b.end == T0 + s(60)
    assert a.start == T0 + s(30) >= T0 + s(4)


def test_due_window_is_the_latest_complete_one_after_an_outage() -> None:
    r = running(T0, last=T0 + s(30))
    tick = analysis_tick(r, T0 + s(185))
    assert tick is not None and tick.ready
    assert (tick.start, tick.end) == (T0 + s(150), T0 + s(180))


def test_warmup_keeps_the_first_seconds_of_each_step_out_of_every_window() -> None:
    # interval 10s, warm-up 15s: a step served at 3.4s is analysed from 18.4s, i.e. the window [20s, 30s)
    r = running(T0 + s(3.4), warmup="15s")
    tick = analysis_tick(r, T0 + s(5))
    assert tick is not None and (tick.start, tick.end, tick.ready) == (T0 + s(20), T0 + s(30), False)
    assert next_wakeup(r, T0 + s(21)) == T0 + s(30)
    assert not window_valid(r, Tick(T0 + s(10), T0 + s(20), True))  # holds the warm-up's seconds
    assert window_valid(r, Tick(T0 + s(20), T0 + s(30), True))
    # later windows of the same step follow the last one analysed, not the warm-up again
    later = running(T0 + s(3.4), last=T0 + s(30), warmup="15s")
    tick = analysis_tick(later, T0 + s(41))
    assert tick is not None and (tick.start, tick.end, tick.ready) == (T0 + s(30), T0 + s(40), True)
    # without a warm-up the same step's first window is [10s, 20s)
    tick = analysis_tick(running(T0 + s(3.4), warmup="0s"), T0 + s(5))
    assert tick is not None and (tick.start, tick.end) == (T0 + s(10), T0 + s(20))


def test_no_analysis_before_the_steps_traffic_is_served() -> None:
    assert analysis_tick(running(T0, applied=False), T0 + s(100)) is None
    assert analysis_tick(running(T0, phase=Phase.PENDING), T0 + s(100)) is None


def test_next_wakeup_is_the_earliest_of_bake_tick_and_deadlines() -> None:
    r = running(T0 + s(1))  # step 0 bakes 10s (canary interval), analysis every 30s
    assert next_wakeup(r, T0 + s(2)) == T0 + s(11)
    assert next_wakeup(r, T0 + s(12)) == T0 + s(60)
    pending = rollout(phase=Phase.PENDING)
    pending = pending.model_copy(update={"status": pending.status.model_copy(update={"started_at": T0})})
    assert next_wakeup(pending, T0 + s(1)) == T0 + s(600)  # candidateReady deadline (default 10m)
    done = rollout(phase=Phase.SUCCEEDED)
    assert next_wakeup(done, T0) is None
