"""Pre-warming (rollout.engine.prewarm): before the candidate's share grows, it is held at the pods the new
share needs (that share of the stable's pods at the start), and the share waits for them, within bounds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rollout.api.rollout import Phase, Verdict
from rollout.engine import prewarm
from rollout.engine.inputs import AnalysisUpdate, RecordEvent
from rollout.engine.observations import ObservedTraffic
from rollout.engine.steps import engine_steps
from tests.engine.world import World, make_rollout, results

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 10, "bake": "1m"}, {"weight": 50, "bake": "1m"}]}},
    "analysis": {
        "interval": "30s",
        "notReadyGrace": "2m",
        "metrics": [{"name": "latency", "builtin": "latency", "threshold": {"max": 0.5}}],
    },
}


def window(w: World, seconds: float) -> AnalysisUpdate:
    end = w.now + timedelta(seconds=seconds)
    return AnalysisUpdate(end, results(end, verdict=Verdict.PASS, names=("latency",)), {})


def knative(w: World) -> None:
    """Knative's autoscaler takes the hold the controller wrote as the candidate's min-scale."""
    held = w.status.prewarm_pods
    if held is not None:
        w.wanted_pods = max(w.wanted_pods or 0, held)


def bake(w: World) -> None:
    """Serve the step's share and bake it to its end (two passing windows)."""
    w.tick()
    w.tick(30, analysis=window(w, 30))
    w.tick(30, analysis=window(w, 30))


def test_the_share_is_that_share_of_the_stable_pods_at_the_start() -> None:
    assert prewarm.pods_for(10, 20, None) == 2
    assert prewarm.pods_for(50, 20, None) == 10
    assert prewarm.pods_for(100, 20, None) == 20
    assert prewarm.pods_for(15, 3, None) == 1  # rounded up: a share is never served by no pod
    assert prewarm.pods_for(100, 20, 8) == 8  # never past the candidate's max-scale


def test_the_next_share_follows_the_ladder_and_ends_at_promotion() -> None:
    w = World(make_rollout(POLICY))
    steps = engine_steps(w.rollout.spec.policy.spec)
    assert prewarm.next_share(steps, w.status) == 10  # Pending: the first step's
    w.tick()
    assert w.status.phase == Phase.PROGRESSING
    assert prewarm.next_share(steps, w.status) == 50
    last = w.status.model_copy(update={"current_step": 1})
    assert prewarm.next_share(steps, last) == 100  # the decisive step ends in promotion
    gated = make_rollout(
        {**POLICY, "strategy": {"canary": {"steps": [{"weight": 10}, {"pause": {}}, {"weight": 50}]}}}
    )
    gate_steps = engine_steps(gated.spec.policy.spec)
    assert prewarm.next_share(gate_steps, last.model_copy(update={"current_step": 0})) is None


def test_each_share_waits_for_its_pods_and_the_hold_ends_with_the_rollout() -> None:
    w = World(make_rollout(POLICY), candidate_pods=1, wanted_pods=1, stable_pods=20)
    w.tick()
    assert w.status.phase == Phase.PENDING and w.status.stable_pods_before == 20
    assert w.status.prewarm_pods == 2  # 10% of 20 pods, before the first share
    assert "pre-warming the candidate for its next share: 1 of 2 pods ready" in w.status.message
    knative(w)
    w.tick()
    assert w.status.phase == Phase.PENDING
    w.candidate_pods = 2
    w.tick()
    assert w.status.phase == Phase.PROGRESSING and w.status.prewarm_since is None
    bake(w)
    assert w.status.current_step == 0 and w.status.prewarm_pods == 10  # 50% of 20, while at 10%
    knative(w)
    w.tick(5)
    assert w.status.current_step == 0
    assert "waiting for the candidate's pods: 2 of 10 ready" in w.status.message
    w.candidate_pods = 10
    w.tick(5)
    assert w.status.current_step == 1 and w.status.prewarm_pods == 10
    bake(w)
    assert w.status.phase == Phase.PROGRESSING and w.status.prewarm_pods == 20  # 100% before promotion
    knative(w)
    w.candidate_pods = 20
    w.tick(5)
    assert w.status.phase == Phase.PROMOTING
    w.served = ObservedTraffic({"hello-00002": 100}, {"stable": "hello-00002"}, True)
    w.tick()
    assert w.status.phase == Phase.SUCCEEDED
    assert w.status.prewarm_pods is None and w.status.prewarm_since is None  # the Revision's own comes back


def test_pods_that_do_not_come_stop_the_wait_within_not_ready_grace() -> None:
    w = World(make_rollout(POLICY), candidate_pods=2, wanted_pods=2, stable_pods=20)
    w.tick(), w.tick()
    bake(w)
    assert w.status.prewarm_pods == 10
    knative(w)  # Knative wants them; a quota lets none start
    d = w.tick(60)
    assert w.status.current_step == 0 and w.status.prewarm_pods == 10
    d = w.tick(65)  # two minutes since the step could end
    assert w.status.prewarm_pods is None
    stopped = [a for a in d.actions if isinstance(a, RecordEvent) and a.reason == "PrewarmStopped"]
    assert stopped and "2 of 10 pods ready and the pods did not become ready" in stopped[0].message
    w.wanted_pods = 2  # the hold is gone: Knative wants what the share needs again
    w.tick(5)
    assert w.status.current_step == 1  # the share is given without them


def test_a_knative_that_ignores_the_hold_delays_a_share_by_seconds_not_the_grace() -> None:
    w = World(make_rollout(POLICY), candidate_pods=2, wanted_pods=2, stable_pods=20)
    w.tick(), w.tick()
    bake(w)
    assert w.status.prewarm_pods == 10
    w.tick(20)
    assert w.status.current_step == 0  # Knative may yet react
    d = w.tick(15)
    assert w.status.prewarm_pods is None
    said = [a.message for a in d.actions if isinstance(a, RecordEvent)]
    assert any("Knative's autoscaler did not want them" in m for m in said), said
    w.tick(5)
    assert w.status.current_step == 1


def test_no_hold_when_the_candidate_has_the_pods_or_prewarm_is_off() -> None:
    w = World(make_rollout(POLICY), candidate_pods=12, wanted_pods=12, stable_pods=20)
    w.tick(), w.tick()
    bake(w)
    w.tick(5)
    assert w.status.current_step == 1 and w.status.prewarm_pods is None  # 12 pods already serve 50%
    off = {**POLICY, "strategy": {**POLICY["strategy"], "prewarm": False}}
    w = World(make_rollout(off), candidate_pods=1, wanted_pods=1, stable_pods=20)
    w.tick()
    assert w.status.phase == Phase.PROGRESSING and w.status.prewarm_pods is None


def test_a_blue_green_switch_waits_for_the_pods_that_served_everything() -> None:
    policy = {
        "strategy": {"blueGreen": {"analysisDuration": "1m"}},
        "analysis": {**POLICY["analysis"], "metrics": []},
    }
    w = World(make_rollout(policy), candidate_pods=1, wanted_pods=1, stable_pods=6)
    w.tick(), w.tick()
    assert w.status.phase == Phase.PROGRESSING and w.status.prewarm_pods is None  # the preview takes 0%
    w.tick(65)
    assert w.status.phase == Phase.PROGRESSING and w.status.prewarm_pods == 6  # 100% at the switch
    knative(w)
    w.tick(5)
    assert w.status.phase == Phase.PROGRESSING
    w.candidate_pods = 6
    w.tick(5)
    assert w.status.phase == Phase.PROMOTING


def _capped(d: Any) -> list[str]:
    return [a.message for a in d.actions if isinstance(a, RecordEvent) and a.reason == "CandidateCapped"]


def test_a_max_scale_below_a_shares_pods_is_said_once_as_that_share_falls_due() -> None:
    w = World(make_rollout(POLICY), candidate_pods=1, wanted_pods=1, stable_pods=20, max_pods=6)
    said: list[str] = []
    said += _capped(w.tick())  # 10% needs 2 pods: within max-scale
    knative(w)
    w.candidate_pods = 2
    said += _capped(w.tick())
    assert w.status.phase == Phase.PROGRESSING and not said
    w.tick()
    w.tick(30, analysis=window(w, 30))
    d = w.tick(30, analysis=window(w, 30))  # the 50% share falls due: it needs 10 pods, max-scale 6
    said += _capped(d)
    assert said == [
        "the candidate's max-scale 6 keeps it below the 10 pods 50% of the traffic needs (the stable revision "
        "ran 20 when the rollout started); it will serve that share from at most 6"
    ]
    assert w.status.prewarm_pods == 6  # the hold stops at max-scale
    knative(w)
    for _ in range(3):  # waiting for the six pods says nothing more
        assert not _capped(w.tick(5))
    w.candidate_pods = 6
    assert not _capped(w.tick(5))
    assert w.status.current_step == 1
    promoted = _capped(w.tick())
    promoted += _capped(w.tick(30, analysis=window(w, 30)))
    promoted += _capped(w.tick(30, analysis=window(w, 30)))  # promotion's 100% needs 20: said for it
    promoted += _capped(w.tick(5))
    assert len(promoted) == 1 and "the 20 pods 100% of the traffic needs" in promoted[0]
