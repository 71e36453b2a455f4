"""A step's bake counts from when its split was first seen served (`ObservedTraffic.since`), and only when that
moment can belong to the step (the recorded status was waiting for Knative on this step; not in the future)."""

from datetime import timedelta

from rollout.api.rollout import Phase
from rollout.engine.observations import ObservedTraffic
from tests.engine.world import World, make_rollout

LADDER = {"strategy": {"canary": {"steps": [{"weight": 10, "bake": "1m"}, {"weight": 50, "bake": "1m"}]}}}


def _waiting_on_step_zero() -> World:
    w = World(make_rollout(LADDER))
    w.knative_follows = False
    w.tick()
    assert w.status.phase == Phase.PROGRESSING and not w.status.traffic_applied
    return w


def _serve_the_plan(w: World, since_ago: float) -> None:
    plan = w.history[-1].plan
    w.served = ObservedTraffic(plan.percents(), plan.tags(), True, since=w.now - timedelta(seconds=since_ago))


def test_the_step_starts_when_the_split_was_seen_served_not_when_the_decision_runs() -> None:
    w = _waiting_on_step_zero()
    w.tick(20)
    _serve_the_plan(w, since_ago=15)  # seen served 5 s after the write, noticed 15 s later
    w.tick(0)
    assert w.status.traffic_applied
    assert w.status.step_started_at == w.now - timedelta(seconds=15)
    w.tick(44, analysis=w.passing())  # 59 s after it was served: the 1m bake is not over
    assert w.status.current_step == 0
    w.tick(1, analysis=w.passing())
    assert w.status.current_step == 1 and not w.status.traffic_applied


def test_a_time_before_the_step_or_in_the_future_is_not_taken() -> None:
    w = _waiting_on_step_zero()
    w.tick(5)
    _serve_the_plan(w, since_ago=-3)  # a clock that runs ahead of the decision's
    w.tick(0)
    assert w.status.step_started_at == w.now


def test_without_a_time_the_decision_time_counts() -> None:
    w = _waiting_on_step_zero()
    w.knative_follows = True
    w.tick(3)
    w.tick(7)
    assert w.status.traffic_applied and w.status.step_started_at == w.now
