"""Scenario tests of `decide` with synthetic observations (no server, no clock)."""

from datetime import datetime, timedelta
from typing import Any

import pytest

from rollout.api.rollout import (
    ManualRequest,
    MetricResult,
    PausedFor,
    Phase,
    RequestAction,
    RolloutStatus,
    Verdict,
)
from rollout.engine.inputs import AnalysisUpdate, RecordEvent, RetryRollout, WebhookResult
from rollout.engine.observations import ObservedTraffic
from rollout.engine.plans import pinned
from rollout.engine.transitions import Event
from rollout.engine.windows import analysis_due
from tests.engine.world import World, make_rollout, results

LADDER = {"strategy": {"canary": {"steps": [{"weight": 10, "bake": "1m"}, {"weight": 50, "bake": "1m"}]}}}


def drive_step(w: World, *, no_worse: bool = False) -> None:
    """Tick with passing analysis until the step advances."""
    start = w.status.current_step
    for _ in range(100):
        d = w.tick(
            30,
            analysis=w.passing(no_worse=no_worse)
            if analysis_due(w.rollout, w.now + timedelta(seconds=30))
            else None,
        )
        if w.status.current_step != start or w.status.phase != Phase.PROGRESSING:
            return
    raise AssertionError(f"step {start} never ended: {d.status.message}")


def test_good_canary_walks_every_step_and_is_promoted_only_once_knative_serves_it() -> None:
    w = World(make_rollout(LADDER))
    d = w.tick()
    assert d.event == Event.CANDIDATE_READY and w.status.phase == Phase.PROGRESSING
    assert d.plan.percents() == {"hello-00001": 90, "hello-00002": 10}
    assert d.plan.tags() == {"stable": "hello-00001", "canary": "hello-00002"}
    assert not w.status.traffic_applied  # written, not yet served
    w.tick()
    assert w.status.traffic_applied and w.status.step_started_at == w.now
    weights = [w.status.canary_weight]
    drive_step(w)
    weights.append(w.status.canary_weight)
    drive_step(w)
    assert w.status.phase == Phase.PROMOTING and w.status.reason == "AnalysisPassed"
    w.knative_follows = False
    w.served = ObservedTraffic({"hello-00001": 50, "hello-00002": 50}, {"stable": "hello-00001"}, True)
    w.tick()
    assert w.status.phase == Phase.PROMOTING  # Knative has not served 100% yet
    w.served = ObservedTraffic({"hello-00002": 100}, {"stable": "hello-00002"}, False)
    w.tick()
    assert w.status.phase == Phase.PROMOTING  # served, but the Service is not Ready yet
    waiting = next(c for c in w.status.conditions if c.type == "TrafficApplied")
    # still reconciling is the normal state after a write: the same message, so no status write of its own
    assert (waiting.reason, waiting.message) == (
        "WaitingForKnative",
        "Knative has not yet served the planned split",
    )
    w.served = ObservedTraffic({"hello-00002": 100}, {"stable": "hello-00002"}, False, failed=True)
    w.tick()
    waiting = next(c for c in w.status.conditions if c.type == "TrafficApplied")
    assert waiting.reason == "WaitingForKnative" and "is not Ready" in waiting.message
    w.knative_follows = True
    w.tick()
    d = w.tick()
    assert w.status.phase == Phase.SUCCEEDED and d.event == Event.PROMOTION_APPLIED
    assert d.plan.percents() == {"hello-00002": 100}
    assert d.plan.tags() == {"stable": "hello-00002"}
    assert weights == [10, 50]
    assert w.status.finished_at == w.now
    completed = next(c for c in w.status.conditions if c.type == "Completed")
    assert completed.status == "True" and completed.reason == "Promoted"


def test_weights_sum_to_100_and_never_exceed_the_step() -> None:
    w = World(make_rollout(LADDER))
    for _ in range(40):
        d = w.tick(
            20, analysis=w.passing() if analysis_due(w.rollout, w.now + timedelta(seconds=20)) else None
        )
        total = sum(e.percent for e in d.plan.entries)
        assert total == 100
        step_weight = [10, 50][min(w.status.current_step, 1)]
        if w.status.phase in (Phase.PROGRESSING, Phase.PAUSED):
            assert d.plan.percents().get("hello-00002", 0) <= step_weight


def test_regression_rolls_back_with_the_numbers_and_keeps_the_candidate_reachable() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    w.tick(30)
    failing = AnalysisUpdate(
        window_end=w.now,
        results=results(w.now, verdict=Verdict.FAIL),
        judge_state={},
        failed=("error-rate",),
    )
    d = w.tick(1, analysis=failing)
    assert w.status.phase == Phase.ROLLED_BACK and w.status.reason == "RegressionDetected"
    assert d.plan.percents() == {"hello-00001": 100}
    assert d.plan.tags()["canary"] == "hello-00002"
    event = next(a for a in d.actions if isinstance(a, RecordEvent))
    assert event.type == "Warning" and event.reason == "RegressionDetected"
    assert "error-rate Fail (canary 0.10% vs stable 0.10%" in event.message
    assert not w.status.traffic_applied and w.status.message.startswith("RegressionDetected: ")
    assert w.status.message.count("error-rate Fail (canary 0.10% vs stable 0.10%") == 1  # said once
    # terminal: later inputs change nothing but the record of what Knative serves (deciding it again, as
    # the controller does until then, keeps the reason in the message)
    again = w.tick(60, analysis=w.passing())
    assert again.event is None and w.status.phase == Phase.ROLLED_BACK
    assert w.status.traffic_applied and w.status.message.startswith("RegressionDetected: ")
    conds = {c.type: c for c in w.status.conditions}
    assert (conds["TrafficApplied"].status, conds["Completed"].reason) == ("True", "RegressionDetected")


def test_no_data_waits_instead_of_advancing_or_failing() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    for _ in range(10):
        w.tick(30, analysis=w.passing(verdict=Verdict.NO_DATA))
    assert w.status.phase == Phase.PROGRESSING and w.status.current_step == 0
    assert "no data at this step yet" in w.status.message


def test_metric_source_errors_never_promote_even_when_no_data_passes() -> None:
    policy = {**LADDER, "analysis": {"noData": "pass"}}
    w = World(make_rollout(policy))
    w.tick()
    w.tick()
    for _ in range(10):
        w.tick(30, analysis=w.passing(verdict=Verdict.ERROR))
    assert w.status.phase == Phase.PROGRESSING and w.status.current_step == 0
    assert "errs" in w.status.message


def test_evidence_of_no_worse_ends_a_step_before_its_bake() -> None:
    policy = {
        "strategy": {"canary": {"steps": [{"weight": 10, "bake": "10m"}, {"weight": 50, "bake": "10m"}]}}
    }
    w = World(make_rollout(policy))
    w.tick()
    w.tick()
    started = w.now
    drive_step(w, no_worse=True)
    assert w.status.current_step == 1
    assert (w.now - started) < timedelta(minutes=2)
    assert "no worse" in w.history[-1].actions[-1].message  # type: ignore[union-attr]


def test_unready_candidate_fails_at_its_deadline_with_the_revision_message() -> None:
    w = World(make_rollout({**LADDER, "deadlines": {"candidateReady": "2m"}}))
    w.candidate_ready = None
    w.candidate_message = "Back-off pulling image ghcr.io/x/y:bad"
    for _ in range(24):
        d = w.tick(5)
        assert w.status.phase == Phase.PENDING
        assert d.plan.percents() == {"hello-00001": 100}  # never references an unready revision
    d = w.tick(5)
    assert w.status.phase == Phase.FAILED and w.status.reason == "CandidateReadyDeadline"
    msg = next(a for a in d.actions if isinstance(a, RecordEvent)).message
    assert "Back-off pulling image" in msg


def test_failed_candidate_mid_rollout_rolls_back_without_referencing_it() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    w.candidate_ready = False
    d = w.tick()
    assert w.status.phase == Phase.ROLLED_BACK and w.status.reason == "CandidateFailed"
    assert d.plan.percents() == {"hello-00001": 100}
    assert "hello-00002" not in d.plan.tags().values()


def test_manual_gate_waits_for_resume_then_continues() -> None:
    policy = {
        "strategy": {
            "canary": {"steps": [{"weight": 10, "bake": "1m"}, {"pause": {}}, {"weight": 50, "bake": "1m"}]}
        }
    }
    w = World(make_rollout(policy))
    w.tick()
    w.tick()
    drive_step(w)
    assert w.status.phase == Phase.PAUSED and w.status.paused_for == PausedFor.GATE
    assert "waiting at a manual gate" in next(
        c.message for c in w.status.conditions if c.type == "Progressing"
    )
    for _ in range(5):
        d = w.tick(600)
        assert w.status.phase == Phase.PAUSED
        assert d.plan.percents()["hello-00002"] == 10  # holds the previous weight
    w.request(RequestAction.RESUME)
    d = w.tick()
    assert w.status.phase == Phase.PROGRESSING and w.status.current_step == 2 and d.event == Event.GATE_OPENED
    assert w.status.handled_request == "r1" and w.status.paused_for is None


def test_a_paused_rollout_says_why_in_a_field() -> None:
    """A person's pause at a gate step's position is not a gate: resume returns to Progressing."""
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    w.request(RequestAction.PAUSE)
    w.tick()
    assert (w.status.phase, w.status.paused_for) == (Phase.PAUSED, PausedFor.REQUEST)
    w.request(RequestAction.RESUME)
    d = w.tick()
    assert (w.status.phase, w.status.paused_for, d.event) == (Phase.PROGRESSING, None, Event.RESUME_REQUESTED)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("ManualGate", PausedFor.GATE),
        ("InconclusiveHold", PausedFor.INCONCLUSIVE),
        ("RolloutDeadlineExceeded", PausedFor.DEADLINE),
        ("PauseRequested", PausedFor.REQUEST),
    ],
)
def test_status_written_before_paused_for_existed_reads_it_from_the_reason(
    reason: str, expected: PausedFor
) -> None:
    status = RolloutStatus.model_validate({"phase": "Paused", "reason": reason})
    assert status.paused_for == expected
    assert RolloutStatus.model_validate({"phase": "Progressing", "reason": reason}).paused_for is None


def test_timed_gate_continues_by_itself() -> None:
    policy = {
        "strategy": {
            "canary": {"steps": [{"weight": 10, "bake": "1m"}, {"pause": {"duration": "5m"}}, {"weight": 50}]}
        }
    }
    w = World(make_rollout(policy))
    w.tick()
    w.tick()
    drive_step(w)
    assert w.status.phase == Phase.PAUSED
    w.tick(200)
    assert w.status.phase == Phase.PAUSED
    w.tick(120)
    assert w.status.phase == Phase.PROGRESSING and w.status.current_step == 2


def test_pause_resume_promote_abort_requests() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    w.request(RequestAction.PAUSE)
    w.tick()
    assert w.status.phase == Phase.PAUSED and w.status.paused_from == Phase.PROGRESSING
    w.request(RequestAction.RESUME)
    w.tick()
    assert w.status.phase == Phase.PROGRESSING and w.status.paused_from is None
    w.request(RequestAction.PROMOTE)
    d = w.tick()
    assert w.status.phase == Phase.PROMOTING and d.plan.percents() == {"hello-00002": 100}
    w2 = World(make_rollout(LADDER))
    w2.tick()
    w2.request(RequestAction.ABORT)
    d = w2.tick()
    assert w2.status.phase == Phase.ABORTED and d.plan.percents() == {"hello-00001": 100}


def test_inapplicable_request_is_acknowledged_with_a_warning() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.request(RequestAction.RESUME)
    d = w.tick()
    assert w.status.handled_request == "r1" and w.status.phase == Phase.PROGRESSING
    assert any(isinstance(a, RecordEvent) and a.reason == "RequestIgnored" for a in d.actions)


def test_every_handled_request_is_kept_with_who_and_what_came_of_it() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    w.request(RequestAction.RESUME, by="bob")  # not paused: ignored
    w.tick()
    w.request(RequestAction.PAUSE, by="alice")
    w.tick()
    w.request(RequestAction.RESUME, by="alice")
    w.tick()
    seen = [(r.id, r.action, r.requested_by, r.outcome) for r in w.status.requests]
    assert seen == [
        ("r1", RequestAction.RESUME, "bob", "Ignored"),
        ("r2", RequestAction.PAUSE, "alice", "Applied"),
        ("r3", RequestAction.RESUME, "alice", "Applied"),
    ]
    assert all(r.handled_at is not None for r in w.status.requests)
    for _ in range(25):  # the history is bounded: the newest are kept
        w.request(RequestAction.PROMOTE if _ == 24 else RequestAction.RESUME)
        w.tick()
    assert len(w.status.requests) == 20 and w.status.requests[-1].action == RequestAction.PROMOTE


def _promoted() -> World:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    drive_step(w)
    drive_step(w)
    w.tick()
    w.tick()
    assert w.status.phase == Phase.SUCCEEDED
    return w


def test_undo_puts_the_previous_stable_back_at_once_and_holds() -> None:
    w = _promoted()
    w.request(RequestAction.UNDO, by="carol")
    d = w.tick()
    assert (w.status.phase, w.status.reason, d.event) == (Phase.UNDONE, "Undone", Event.UNDO_REQUESTED)
    assert d.plan.percents() == {"hello-00001": 100} and d.plan.tags() == {"stable": "hello-00001"}
    assert w.status.undone_to == "hello-00001" and w.status.requests[-1].outcome == "Applied"
    assert w.status.outcome.startswith("undo requested by carol: hello-00001 serves 100% again instead of")
    event = next(a for a in d.actions if isinstance(a, RecordEvent))
    assert event.type == "Warning" and event.reason == "Undone"
    for _ in range(3):  # it holds: later decisions keep the undo's plan
        d = w.tick(60)
        assert d.plan.percents() == {"hello-00001": 100} and w.status.phase == Phase.UNDONE
    w.request(RequestAction.UNDO)  # an undone rollout cannot be undone again
    w.tick()
    assert w.status.requests[-1].outcome == "Ignored"


def test_undo_applies_to_a_promotion_only_and_may_name_a_revision() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.request(RequestAction.UNDO)
    w.tick()
    assert w.status.phase == Phase.PROGRESSING and w.status.requests[-1].outcome == "Ignored"
    w = _promoted()
    req = ManualRequest(action=RequestAction.UNDO, id="named", requested_at=w.now, revision="hello-00000")
    w.rollout = w.rollout.model_copy(update={"spec": w.rollout.spec.model_copy(update={"request": req})})
    d = w.tick()
    assert w.status.undone_to == "hello-00000" and d.plan.percents() == {"hello-00000": 100}


def test_retry_of_a_rolled_back_rollout_asks_for_a_new_attempt() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.request(RequestAction.ABORT)
    w.tick()
    w.request(RequestAction.RETRY)
    d = w.tick()
    assert w.status.phase == Phase.ABORTED
    assert RetryRollout(attempt=2) in d.actions


def test_superseded_and_reverted_end_cleanly_on_stable() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    d = w.tick(superseded_by="hello-00003")
    assert w.status.phase == Phase.SUPERSEDED and d.plan.percents() == {"hello-00001": 100}
    assert "hello-00003" not in d.plan.percents()
    w2 = World(make_rollout(LADDER))
    w2.tick()
    d = w2.tick(reverted=True)
    assert w2.status.phase == Phase.SUPERSEDED and w2.status.reason == "TemplateReverted"


def test_opting_out_mid_rollout_aborts_on_stable_alone() -> None:
    """The label is removed: the rollout ends Aborted (OptedOut) and its last plan is stable at 100% with no
    candidate left parked (nothing will manage the target's traffic afterwards)."""
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    assert w.status.phase == Phase.PROGRESSING and w.status.canary_weight > 0
    d = w.tick(opted_out=True)
    assert (w.status.phase, w.status.reason) == (Phase.ABORTED, "OptedOut")
    assert d.plan == pinned("hello-00001")
    (event,) = [a for a in d.actions if isinstance(a, RecordEvent)]
    assert (event.type, event.reason) == ("Warning", "OptedOut") and "knrollout.dev/policy" in event.message
    assert w.tick().plan == pinned("hello-00001")  # and it stays so


def test_rollout_deadline_rolls_back_or_pauses_once() -> None:
    w = World(make_rollout({**LADDER, "deadlines": {"rollout": "10m"}}))
    w.tick()
    w.tick()
    w.tick(601)
    assert w.status.phase == Phase.FAILED and w.status.reason == "RolloutDeadlineExceeded"
    w2 = World(make_rollout({**LADDER, "deadlines": {"rollout": "10m", "onRolloutDeadline": "pause"}}))
    w2.tick()
    w2.tick()
    w2.tick(601)
    assert w2.status.phase == Phase.PAUSED
    w2.request(RequestAction.RESUME)
    w2.tick()
    w2.tick(30)
    assert w2.status.phase == Phase.PROGRESSING  # the deadline does not pause it a second time


def test_webhooks_gate_the_start_and_the_promotion() -> None:
    policy = {
        **LADDER,
        "webhooks": [
            {"name": "smoke", "type": "preRollout", "url": "http://127.0.0.1:1/smoke"},
            {"name": "ok", "type": "confirmPromotion", "url": "http://127.0.0.1:1/ok"},
        ],
    }
    w = World(make_rollout(policy))
    w.tick()
    assert w.status.phase == Phase.PENDING
    w.tick(webhooks={"preRollout/smoke": WebhookResult(ok=True, status_code=200)})
    assert w.status.phase == Phase.PROGRESSING
    w.tick()
    drive_step(w)
    for _ in range(6):
        w.tick(
            30,
            analysis=w.passing() if analysis_due(w.rollout, w.now + timedelta(seconds=30)) else None,
            webhooks={"confirmPromotion/ok": WebhookResult(ok=False, status_code=503, message="no")},
        )
    assert w.status.phase == Phase.PROGRESSING and w.status.current_step == 1
    w.tick(webhooks={"confirmPromotion/ok": WebhookResult(ok=True, status_code=200)})
    assert w.status.phase == Phase.PROMOTING
    w3 = World(make_rollout(policy))
    w3.tick()
    w3.tick(webhooks={"preRollout/smoke": WebhookResult(ok=False, status_code=500, message="boom")})
    assert w3.status.phase == Phase.FAILED and w3.status.reason == "PreRolloutWebhookFailed"


def test_blue_green_keeps_live_traffic_on_stable_until_the_switch() -> None:
    w = World(make_rollout({"strategy": {"blueGreen": {"analysisDuration": "2m"}}}))
    d = w.tick()
    assert d.plan.percents() == {"hello-00001": 100} and d.plan.tags()["preview"] == "hello-00002"
    w.tick()
    drive_step(w)
    assert w.status.phase == Phase.PROMOTING


def test_ab_test_by_header_waits_for_a_decision() -> None:
    w = World(make_rollout({"strategy": {"abTest": {"duration": "2m"}}}))
    d = w.tick()
    assert d.plan.percents() == {"hello-00001": 100}
    assert d.plan.tags() == {"stable": "hello-00001", "treatment": "hello-00002", "control": "hello-00001"}
    w.tick()
    drive_step(w)
    assert w.status.phase == Phase.PAUSED and w.status.paused_for == PausedFor.GATE
    w.request(RequestAction.RESUME)
    w.tick()
    assert w.status.phase == Phase.PROMOTING


def test_status_round_trips_through_the_wire_so_a_restart_continues() -> None:
    from rollout.api.load import parse_rollout

    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    w.tick(30, analysis=w.passing())
    wire = w.rollout.to_wire()
    restored, problems = parse_rollout(wire)
    assert problems == [] and restored == w.rollout


def test_warmup_keeps_the_first_seconds_of_each_step_out_of_the_analysis() -> None:
    w = World(make_rollout({**LADDER, "analysis": {"interval": "30s", "warmup": "20s"}}))
    w.tick()
    w.tick()  # traffic served: the step clock starts
    started = w.status.step_started_at
    assert not analysis_due(w.rollout, started + timedelta(seconds=49))
    assert analysis_due(w.rollout, started + timedelta(seconds=50))
    plain = World(make_rollout({**LADDER, "analysis": {"interval": "30s"}}))
    plain.tick()
    plain.tick()
    assert analysis_due(plain.rollout, plain.status.step_started_at + timedelta(seconds=30))


def _window(
    w: World, seconds: float, *, data: bool, error: bool = False, latency_p: float | None = None
) -> datetime:
    """Tick `seconds` with one analysed window of both default metrics ending then: with data, without, or
    with the source failing (before the consecutive-error limit: the verdict is still Inconclusive);
    `latency_p`: the latency comparison's p-value for "no regression"."""
    end = w.now + timedelta(seconds=seconds)
    before = {r.name: r.last_data_at for r in w.status.analysis}
    found = tuple(
        MetricResult(
            name=name,
            verdict=Verdict.PASS if data else Verdict.INCONCLUSIVE,
            measured_at=end,
            last_data_at=end if data else before.get(name),
            errored_at=end if error else None,
            canary_requests=60 if data else None,
            p_value=latency_p if name == "latency" else None,
        )
        for name in ("error-rate", "latency")
    )
    w.tick(seconds, analysis=AnalysisUpdate(window_end=end, results=found, judge_state={"n": 1}))
    return end


def test_an_error_on_the_last_window_holds_the_step_whatever_the_count_of_errors() -> None:
    """Prometheus cut in the last seconds of a step: one failed window (far below the consecutive-error limit)
    must hold the step at its bake's end, and the next window with data lets it go on."""
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    _window(w, 30, data=True)
    for _ in range(4):  # the bake (1m) ends meanwhile
        _window(w, 30, data=False, error=True)
        assert w.status.current_step == 0, w.status.message
    assert "failed on the last window" in w.status.message
    _window(w, 30, data=True)
    assert w.status.current_step == 1


def test_a_last_window_without_data_holds_the_step() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    _window(w, 30, data=True)
    for _ in range(3):
        _window(w, 30, data=False)
    assert w.status.current_step == 0 and "the last window had no data" in w.status.message
    # with noData: pass the policy says so explicitly: the same windows end the step
    p = World(make_rollout({**LADDER, "analysis": {"noData": "pass"}}))
    p.tick()
    p.tick()
    _window(p, 30, data=True)
    for _ in range(3):
        _window(p, 30, data=False)
    assert p.status.current_step == 1
    advanced = [a.message for d in p.history for a in d.actions if isinstance(a, RecordEvent)]
    assert any("without data for error-rate, latency (noData: pass)" in m for m in advanced), advanced


def test_the_bake_ends_a_step_only_once_its_last_window_is_measured() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    _window(w, 20, data=True)
    w.tick(45)  # the bake's minute has passed; no window reaching into its last interval is measured yet
    assert w.status.current_step == 0 and "waiting for the last window" in w.status.message
    _window(w, 1, data=True)
    assert w.status.current_step == 1


def test_a_short_step_is_not_ended_on_a_window_mostly_before_it() -> None:
    short = {"strategy": {"canary": {"steps": [{"weight": 10, "bake": "30s"}, {"weight": 50}]}}}
    w = World(make_rollout(short))
    w.tick()
    w.tick()
    _window(w, 5, data=True)  # 5 of its 30 seconds were this step's traffic
    w.tick(26)
    assert w.status.current_step == 0 and "waiting for the last window" in w.status.message
    _window(w, 25, data=True)
    assert w.status.current_step == 1


def test_a_quiet_step_waits_for_enough_requests_and_the_deadline_says_why() -> None:
    quiet = {**LADDER, "analysis": {"minStepRequests": 100}, "deadlines": {"rollout": "5m"}}
    w = World(make_rollout(quiet))
    w.tick()
    w.tick()
    _window(w, 30, data=True)  # 60 candidate requests
    _window(w, 35, data=True)  # the bake has passed: 120 now
    assert w.status.current_step == 1 and w.status.step_requests == 0
    w.tick()  # Knative serves step 2
    _window(w, 65, data=True)  # step 2's bake has passed on 60 requests
    assert w.status.current_step == 1 and w.status.step_requests == 60
    assert "not enough traffic to tell yet: 60 of 100 candidate requests" in w.status.message
    for _ in range(5):
        w.tick(40)  # no more windows: the deadline comes first
    assert w.status.phase == Phase.FAILED and w.status.reason == "RolloutDeadlineExceeded"
    assert "not enough traffic to tell (60 of 100 candidate requests" in w.status.outcome


COMPARED_ANALYSIS: dict[str, Any] = {
    "minStepRequests": 0,
    "metrics": [
        {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}},
        {"name": "latency", "builtin": "latency", "compare": {"maxRelativeDegradation": 0}},
    ],
}
COMPARED = {**LADDER, "analysis": COMPARED_ANALYSIS}


def test_a_step_leaning_toward_a_regression_holds_past_its_bake_up_to_its_limit() -> None:
    w = World(make_rollout(COMPARED))
    w.tick()
    w.tick()
    _window(w, 30, data=True, latency_p=0.5)
    _window(w, 35, data=True, latency_p=0.2)  # the bake has passed, but latency leans toward a regression
    assert w.status.current_step == 0
    assert "the evidence leans toward a regression: latency (p 0.2); holding up to 3m" in w.status.message
    _window(w, 30, data=True, latency_p=0.6)  # the evidence turned: the step ends as the bake would
    assert w.status.current_step == 1


def test_a_leaning_step_ends_after_its_longest_hold_and_a_policy_may_turn_holding_off() -> None:
    w = World(make_rollout(COMPARED))
    w.tick()
    w.tick()
    for _ in range(5):  # 2.5 minutes of a 1-minute bake: held
        _window(w, 30, data=True, latency_p=0.1)
        assert w.status.current_step == 0
    _window(w, 31, data=True, latency_p=0.1)  # three bakes: it ends as the bake would have ended it
    assert w.status.current_step == 1
    off = {**LADDER, "analysis": {**COMPARED_ANALYSIS, "leaningHold": {"pValue": 0}}}
    w = World(make_rollout(off))
    w.tick()
    w.tick()
    _window(w, 30, data=True, latency_p=0.01)
    _window(w, 35, data=True, latency_p=0.01)
    assert w.status.current_step == 1


def test_step_events_describe_the_step_that_ended() -> None:
    w = World(make_rollout(LADDER))
    w.tick()
    w.tick()
    drive_step(w)
    drive_step(w)
    messages = [a.message for d in w.history for a in d.actions if isinstance(a, RecordEvent)]
    advanced = next(m for m in messages if m.startswith("Progressing -> Progressing"))
    passed = next(m for m in messages if m.startswith("Progressing -> Promoting"))
    assert "step 1/2 at 10%" in advanced and "step 2/2 at 50%" in passed, messages


def test_a_rollback_hook_that_answers_no_is_not_a_failed_hook() -> None:
    policy = {**LADDER, "webhooks": [{"name": "alarm", "type": "rollback", "url": "http://hooks.test/alarm"}]}
    w = World(make_rollout(policy))
    w.tick()
    w.tick()
    no = w.tick(30, analysis=w.passing(), webhooks={"rollback/alarm": WebhookResult(False, 404, "no alarm")})
    assert not [a for a in no.actions if isinstance(a, RecordEvent) and a.reason == "WebhookFailed"]
    broken = w.tick(
        30, analysis=w.passing(), webhooks={"rollback/alarm": WebhookResult(False, None, "timed out")}
    )
    (failed,) = [a for a in broken.actions if isinstance(a, RecordEvent) and a.reason == "WebhookFailed"]
    assert "timed out" in failed.message and w.status.phase == Phase.PROGRESSING


PROBED = {
    "strategy": {"canary": {**LADDER["strategy"]["canary"], "probe": {"weight": 1, "bake": "30s"}}},
    "analysis": {"minStepRequests": 100, "metrics": COMPARED_ANALYSIS["metrics"]},
}


def test_a_probe_waits_for_data_three_bakes_at_most_and_the_ladder_still_waits_for_evidence() -> None:
    w = World(make_rollout(PROBED))
    d = w.tick()
    assert d.plan.percents() == {"hello-00001": 99, "hello-00002": 1}
    w.tick()
    assert "step 1/3 (probe: 1% to the candidate)" in w.status.message
    _window(w, 30, data=False)  # no series for the candidate yet (Prometheus has not found its pods)
    _window(w, 30, data=False)
    assert w.status.current_step == 0 and "no data at this step yet" in w.status.message
    _window(w, 30, data=False)  # a quiet service: 1% of its traffic is never measured, and the probe ends
    assert w.status.current_step == 1 and w.status.canary_weight == 10
    advanced = [a.message for d in w.history for a in d.actions if isinstance(a, RecordEvent)]
    assert any("a probe waits for data at most 3 times its bake" in m for m in advanced), advanced
    w.tick()
    _window(w, 30, data=False)
    _window(w, 35, data=False)  # the first step's bake has passed without data: it holds
    assert w.status.current_step == 1 and "no data at this step yet" in w.status.message
    _window(w, 30, data=True)  # 60 candidate requests of the 100 this policy wants per step
    assert w.status.current_step == 1 and "not enough traffic to tell yet" in w.status.message


def test_a_probe_leaning_toward_a_regression_holds_at_its_small_share() -> None:
    w = World(make_rollout(PROBED))
    w.tick()
    w.tick()
    _window(w, 30, data=True, latency_p=0.1)
    assert w.status.current_step == 0 and w.status.canary_weight == 1
    assert "the evidence leans toward a regression: latency (p 0.1); holding up to 1m30s" in w.status.message
    _window(w, 30, data=True, latency_p=0.6)
    assert w.status.current_step == 1


def test_a_probe_above_the_first_step_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"probe's weight 10 is not below the first step's weight \(10\)"):
        make_rollout({"strategy": {"canary": {"stepWeight": 10, "maxWeight": 50, "probe": {"weight": 10}}}})
