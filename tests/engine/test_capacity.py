"""Cold starts in the decision (rollout.engine.capacity): the Pending candidate is referenced at 0%, its
first share and every next one wait for the pods its autoscaler wants, a step's clock starts only with them,
and windows in which it was short of pods are left out of the comparison, within notReadyGrace."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rollout.api.rollout import Phase, Verdict
from rollout.engine.inputs import AnalysisUpdate
from rollout.engine.observations import ObservedTraffic
from tests.engine.world import World, make_rollout, results

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 10, "bake": "2m"}, {"weight": 50, "bake": "2m"}]}},
    "analysis": {
        "interval": "30s",
        "metrics": [{"name": "latency", "builtin": "latency", "threshold": {"max": 0.5}}],
    },
}


def window(w: World, seconds: float, verdict: Verdict = Verdict.PASS) -> AnalysisUpdate:
    """The analysis of the window ending `seconds` from now (when the next tick decides on it)."""
    end = w.now + timedelta(seconds=seconds)
    found = results(end, verdict=verdict, names=("latency",))
    failed = ("latency",) if verdict == Verdict.FAIL else ()
    return AnalysisUpdate(end, found, {}, failed=failed, summary="latency p99 1.6s > 500ms" if failed else "")


def test_the_pending_candidate_is_parked_and_gets_traffic_only_with_its_pods() -> None:
    w = World(make_rollout(POLICY), candidate_pods=1, wanted_pods=2)
    d = w.tick()
    assert w.status.phase == Phase.PENDING and w.status.short_since == w.now
    assert d.plan.percents() == {"hello-00001": 100}
    assert d.plan.tags()["canary"] == "hello-00002"  # referenced, so that its min-scale applies
    assert (w.status.candidate_pods, w.status.candidate_wanted_pods) == (1, 2)
    w.tick()
    assert w.status.phase == Phase.PENDING  # Ready, but one of its two pods is still starting
    w.candidate_pods = 2
    d = w.tick()
    assert w.status.phase == Phase.PROGRESSING and d.plan.percents()["hello-00002"] == 10
    assert w.status.short_since is None and w.status.candidate_pods is None
    assert w.status.short_until == w.now


def test_a_missing_candidate_is_not_referenced() -> None:
    w = World(make_rollout(POLICY), candidate_ready=None, candidate_reason="RevisionMissing")
    assert w.tick().plan.tags() == {"stable": "hello-00001"}


def test_the_step_clock_waits_for_the_pods_and_the_step_ends_only_with_them() -> None:
    w = World(make_rollout(POLICY), candidate_pods=1, wanted_pods=1)
    w.tick()  # Progressing at 10%
    w.wanted_pods = 2  # the new share: the autoscaler wants a second pod
    w.tick()
    assert w.status.traffic_applied and w.status.step_started_at is None
    assert "waiting for the candidate's pods: 1 of 2 ready" in w.status.message
    w.candidate_pods = 2
    w.tick()
    assert w.status.step_started_at == w.now
    w.wanted_pods = 3  # more load: scaling up again when the bake ends
    w.tick(125, analysis=window(w, 125))
    assert w.status.current_step == 0 and w.status.phase == Phase.PROGRESSING
    w.candidate_pods = 3
    w.tick(5)
    assert w.status.current_step == 1


def test_a_window_spent_short_of_pods_is_left_out_and_the_next_is_judged() -> None:
    w = World(make_rollout(POLICY), candidate_pods=2, wanted_pods=2)
    w.tick(), w.tick()
    started = w.status.step_started_at
    assert started is not None
    w.candidate_pods = 1  # a pod restarts: its requests wait in the activator
    w.tick(10)
    d = w.tick(20, analysis=window(w, 20, Verdict.FAIL))
    assert w.status.phase == Phase.PROGRESSING and w.status.excluded_windows == 1
    assert "left out" in d.log["left_out"] and w.status.last_analysis_at == w.now
    w.candidate_pods = 2
    w.tick(5)
    w.tick(30, analysis=window(w, 30, Verdict.FAIL))  # it began 5 s before the pods were back: left out
    assert w.status.phase == Phase.PROGRESSING and w.status.excluded_windows == 2
    w.tick(30, analysis=window(w, 30, Verdict.FAIL))  # every pod ready all along: judged
    assert w.status.phase == Phase.ROLLED_BACK


def test_a_shortfall_past_its_grace_is_judged() -> None:
    policy = {**POLICY, "analysis": {**POLICY["analysis"], "notReadyGrace": "1m"}}
    w = World(make_rollout(policy), candidate_pods=2, wanted_pods=2)
    w.tick(), w.tick()
    w.candidate_pods = 1  # its pods never come up under load
    w.tick(5)
    w.tick(30, analysis=window(w, 30))
    assert w.status.excluded_windows == 1
    w.tick(30, analysis=window(w, 30))
    assert w.status.excluded_windows == 2
    w.tick(31, analysis=window(w, 31, Verdict.FAIL))  # 91 s into the shortfall: judged as it serves
    assert w.status.phase == Phase.ROLLED_BACK and w.status.excluded_windows == 2


def test_finished_rollouts_forget_a_shortfall() -> None:
    w = World(make_rollout(POLICY), candidate_pods=0, wanted_pods=1, candidate_ready=False)
    w.tick()
    assert w.status.phase == Phase.FAILED
    w.served = ObservedTraffic({"hello-00001": 100}, {"stable": "hello-00001"}, True)
    w.tick()  # decided again once finished: nothing waits for pods any more
    assert w.status.short_since is None
