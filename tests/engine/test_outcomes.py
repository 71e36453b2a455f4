"""What an inconclusive decisive step does (onInconclusive), and what a finished rollout says about itself
in its status alone: the outcome sentence, the Completed condition, the metrics promoted without evidence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rollout.api.rollout import Phase, RequestAction, Verdict
from rollout.engine.inputs import AnalysisUpdate, RecordEvent
from rollout.engine.transitions import Event
from rollout.engine.windows import analysis_due
from tests.engine.world import World, make_rollout

LADDER: dict[str, Any] = {"canary": {"steps": [{"weight": 10, "bake": "1m"}, {"weight": 50, "bake": "1m"}]}}
AB: dict[str, Any] = {"abTest": {"duration": "2m", "promoteOnSuccess": True}}


def run(w: World, verdict: Verdict = Verdict.INCONCLUSIVE, ticks: int = 40) -> list[Event]:
    """Start the rollout and tick with `verdict` analyses until it leaves Progressing (or `ticks` pass)."""
    seen: list[Event] = []
    for _ in range(ticks):
        due = analysis_due(w.rollout, w.now + timedelta(seconds=30))
        d = w.tick(30, analysis=w.passing(verdict=verdict) if due else None)
        if d.event is not None:
            seen.append(d.event)
        if w.status.phase not in (Phase.PENDING, Phase.PROGRESSING):
            break
    return seen


def events(w: World) -> list[str]:
    return [a.message for d in w.history for a in d.actions if isinstance(a, RecordEvent)]


def completed(w: World) -> Any:
    return next(c for c in w.status.conditions if c.type == "Completed")


def test_an_experiment_that_stays_inconclusive_waits_for_a_person() -> None:
    w = World(make_rollout({"strategy": AB}))
    seen = run(w)
    assert seen[-1] == Event.INCONCLUSIVE_HOLD
    assert w.status.phase == Phase.PAUSED and w.status.reason == "InconclusiveHold"
    assert w.status.inconclusive == ["error-rate", "latency"]
    assert "`rollout promote` promotes it" in w.status.message
    assert "error-rate Inconclusive (canary 0.10% vs stable 0.10%)" in events(w)[-1]
    w.tick(30)
    assert w.status.phase == Phase.PAUSED  # holding is not a timer
    w.request(RequestAction.PROMOTE)
    w.tick()
    assert w.status.phase == Phase.PROMOTING
    w.tick()
    w.tick()
    assert w.status.phase == Phase.SUCCEEDED
    assert "promoted with error-rate, latency still inconclusive" in w.status.outcome
    assert completed(w).message == w.status.outcome
    assert w.status.message.startswith("Promoted: revision hello-00002 serves 100%")


def test_resume_after_a_hold_checks_the_evidence_gathered_since() -> None:
    w = World(make_rollout({"strategy": AB}))
    run(w)
    w.request(RequestAction.RESUME)
    run(w, Verdict.PASS)  # the comparisons concluded meanwhile
    assert w.status.phase == Phase.PROMOTING and w.status.inconclusive == []


@pytest.mark.parametrize(
    ("strategy", "action", "phase", "reason"),
    [
        (
            {"canary": {**LADDER["canary"], "onInconclusive": "rollback"}},
            "",
            Phase.ROLLED_BACK,
            "InconclusiveRollback",
        ),
        (
            {"abTest": {**AB["abTest"], "onInconclusive": "rollback"}},
            "",
            Phase.ROLLED_BACK,
            "InconclusiveRollback",
        ),
        ({"canary": {**LADDER["canary"], "onInconclusive": "hold"}}, "", Phase.PAUSED, "InconclusiveHold"),
        (
            {"blueGreen": {"analysisDuration": "2m", "onInconclusive": "hold"}},
            "",
            Phase.PAUSED,
            "InconclusiveHold",
        ),
        (LADDER, "default", Phase.PROMOTING, "AnalysisPassed"),
        ({"blueGreen": {"analysisDuration": "2m"}}, "default", Phase.PROMOTING, "AnalysisPassed"),
    ],
)
def test_the_strategy_says_what_inconclusive_means_at_the_decisive_step(
    strategy: dict[str, Any], action: str, phase: Phase, reason: str
) -> None:
    w = World(make_rollout({"strategy": strategy}))
    run(w)
    assert (w.status.phase, w.status.reason) == (phase, reason)
    assert w.status.current_step == w.status.step_count - 1  # only the decisive step decides
    if phase == Phase.ROLLED_BACK:
        assert "still inconclusive" in w.status.outcome and "onInconclusive: rollback" in w.status.outcome
        assert w.history[-1].plan.percents() == {"hello-00001": 100}


def test_a_person_at_a_gate_decides_whatever_the_evidence() -> None:
    w = World(make_rollout({"strategy": {"abTest": {"duration": "2m", "onInconclusive": "rollback"}}}))
    run(w)
    assert (w.status.phase, w.status.reason) == (Phase.PAUSED, "ManualGate")


def test_promoted_inconclusive_and_without_data_are_named_in_the_status() -> None:
    policy = {"strategy": LADDER, "analysis": {"noData": "pass"}}
    w = World(make_rollout(policy))
    run(w, Verdict.NO_DATA)
    assert w.status.phase == Phase.PROMOTING and w.status.without_data == ["error-rate", "latency"]
    w.tick()
    w.tick()
    assert w.status.phase == Phase.SUCCEEDED
    assert "promoted without data for error-rate, latency (noData: pass)" in w.status.outcome
    assert "promoted without data" in events(w)[-1] and completed(w).message == w.status.outcome


def test_a_failed_candidate_says_why_in_the_status() -> None:
    w = World(make_rollout({"strategy": LADDER}))
    w.tick()
    w.tick()
    w.candidate_ready = False
    w.candidate_reason = "ImagePullBackOff"
    w.candidate_message = "Back-off pulling image ghcr.io/acme/hello:bad"
    w.tick()
    assert w.status.phase == Phase.ROLLED_BACK
    expected = "revision hello-00002 failed: ImagePullBackOff: Back-off pulling image ghcr.io/acme/hello:bad"
    assert w.status.outcome == expected
    assert w.status.message.startswith(f"CandidateFailed: {expected}")
    assert completed(w).message == expected
    w.tick(3600)  # decided again long after: the reason stays, without Events
    assert w.status.outcome == expected and completed(w).message == expected


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("regression", "error-rate, latency regressed at step 1/2 at 10%; traffic is back on hello-00001"),
        ("deadline", "passed its deadline of 5m at step"),
        ("abort", "abort requested by alice at step 1/2 at 10%"),
    ],
)
def test_every_terminal_message_says_what_happened(setup: str, needle: str) -> None:
    w = World(make_rollout({"strategy": LADDER, "deadlines": {"rollout": "5m"}}))
    w.tick()
    w.tick()
    if setup == "regression":
        w.tick(30, analysis=w.passing(verdict=Verdict.FAIL, failed=("error-rate", "latency")))
    elif setup == "abort":
        w.request(RequestAction.ABORT)
        w.tick()
    else:
        w.candidate_ready = True
        for _ in range(20):
            w.tick(30)  # no analysis: the step waits, the deadline passes
    assert w.status.phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED)
    assert needle in w.status.outcome, w.status.outcome
    assert completed(w).message == w.status.outcome


def test_the_step_is_counted_from_one_for_people() -> None:
    """`kubectl get rollouts` and `rollout status` show the same step (status.step; currentStep is 0-based)."""
    w = World(make_rollout({"strategy": LADDER}))
    w.tick()
    assert (w.status.current_step, w.status.step) == (0, "1/2")
    run(w, Verdict.PASS)
    assert (w.status.current_step, w.status.step, w.status.phase) == (1, "2/2", Phase.PROMOTING)


@pytest.mark.parametrize("keep", ["0s", "10m"])
def test_a_failed_candidate_leaves_the_route_after_its_time(keep: str) -> None:
    """Parked at 0% under `canary` for debugging for deadlines.keepFailedCandidate, then off the route so
    that Knative can scale it to zero; the status says which."""
    w = World(make_rollout({"strategy": LADDER, "deadlines": {"keepFailedCandidate": keep}}))
    w.tick()
    w.tick()
    d = w.tick(30, analysis=w.passing(verdict=Verdict.FAIL, failed=("error-rate",)))
    assert w.status.phase == Phase.ROLLED_BACK
    if keep == "0s":
        assert d.plan.tags() == {"stable": "hello-00001"} and w.status.candidate_kept_until is None
        return
    assert d.plan.tags() == {"stable": "hello-00001", "canary": "hello-00002"}
    assert w.status.candidate_kept_until == w.status.finished_at + timedelta(minutes=10)
    assert "stays reachable at 0% under `canary` until" in w.status.message
    d = w.tick(599)
    assert "canary" in d.plan.tags()
    d = w.tick(2)
    assert d.plan.tags() == {"stable": "hello-00001"} and d.plan.percents() == {"hello-00001": 100}
    assert w.status.candidate_kept_until is None and "stays reachable" not in w.status.message
    assert w.status.phase == Phase.ROLLED_BACK and "regressed" in w.status.outcome  # the reason stays


def test_the_outcome_keeps_plain_numbers_and_the_event_the_statistics() -> None:
    w = World(make_rollout({"strategy": LADDER}))
    w.tick()
    w.tick()
    update = w.passing(verdict=Verdict.FAIL, failed=("error-rate",))
    stats = "log M 7.493 (rollback at 5.298), p 0.0006"
    results = tuple(r.model_copy(update={"message": stats}) for r in update.results)
    w.tick(30, analysis=AnalysisUpdate(update.window_end, results, update.judge_state, update.failed))
    assert w.status.phase == Phase.ROLLED_BACK
    assert "error-rate Fail (canary 0.10% vs stable 0.10%)" in w.status.outcome
    assert stats not in w.status.outcome and stats not in w.status.message
    assert f"error-rate: {stats}" in events(w)[-1]  # the detail, for whoever reads the Events
    assert any(r.message == stats for r in w.status.analysis)  # and in status.analysis (-o json)
