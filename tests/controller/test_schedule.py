from datetime import datetime, timedelta

from rollout.api.rollout import Phase, Rollout
from rollout.controller.schedule import analysis_tick, ceil_tick, floor_tick, next_wakeup
from tests.controller.objects import rollout
from tests.engine.world import T0  # 2026-11-25T12:00:00Z, a multiple of every interval used here


def running(
    started: datetime, *, last: datetime | None = None, applied: bool = True, phase: Phase = Phase.PROGRESSING
) -> Rollout:
    r = rollout(phase=phase)
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
