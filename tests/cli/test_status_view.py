"""`rollout status` read at 3 a.m.: the first line says what happened in plain words, then the numbers, in
the units people read them (error rates in %, latencies in ms)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rollout.api.notifications import NotificationLedger, PendingNotification
from rollout.api.rollout import MetricResult, PausedFor, Phase, Verdict
from rollout.cli.status_view import headline, render_status
from tests.engine.world import make_rollout

POLICY = {
    "strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 25}, {"weight": 50}]}},
    "analysis": {
        "metrics": [
            {"name": "errors", "builtin": "errorRate", "threshold": {"max": 0.05}},
            {"name": "p99", "builtin": "latency", "quantile": 0.99, "threshold": {"max": 0.5}},
        ]
    },
}
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def rollout(**status: Any) -> Any:
    r = make_rollout(POLICY)
    return r.model_copy(update={"status": r.status.model_copy(update=status)})


def metric(name: str, verdict: Verdict, value: float, stable: float, limit: float) -> MetricResult:
    return MetricResult(name=name, verdict=verdict, value=value, stable_value=stable, threshold_max=limit)


def test_a_regression_says_which_metric_and_its_numbers_with_units() -> None:
    r = rollout(
        phase=Phase.ROLLED_BACK,
        reason="RegressionDetected",
        outcome="errors regressed at step 2/3 at 25%; ...",
        analysis=[
            metric("errors", Verdict.FAIL, 0.138, 0.004, 0.05),
            metric("p99", Verdict.PASS, 0.120, 0.118, 0.5),
        ],
    )
    assert headline(r) == "Rolled back: canary errors 13.80% vs stable 0.40% (max 5.00%)"
    text = render_status(r, [r], [], NOW)
    assert text.splitlines()[0] == headline(r)
    table = text.split("Analysis", 1)[1]
    assert "13.80%" in table and "120ms" in table and "500ms" in table and "0.138" not in table


def test_slow_candidates_read_in_milliseconds() -> None:
    r = rollout(
        phase=Phase.ROLLED_BACK,
        reason="RegressionDetected",
        analysis=[metric("p99", Verdict.FAIL, 0.85, 0.12, 0.5)],
    )
    assert headline(r) == "Rolled back: canary p99 850ms vs stable 120ms (max 500ms)"


def test_other_endings_and_running_rollouts_in_plain_words() -> None:
    failed = rollout(
        phase=Phase.FAILED,
        reason="CandidateFailed",
        outcome="revision hello-00002 failed: ImagePullBackOff: Back-off pulling image",
    )
    assert headline(failed) == "Failed: revision hello-00002 failed: ImagePullBackOff: Back-off pulling image"
    assert headline(rollout(phase=Phase.PROGRESSING, step="2/3", canary_weight=25)) == (
        "Step 2/3: 25% to the candidate"
    )
    assert headline(rollout(phase=Phase.PENDING)) == "Waiting for revision hello-00002 to become Ready"
    assert headline(rollout(phase=Phase.PAUSED, paused_for=PausedFor.GATE, step="2/3", canary_weight=10)) == (
        "Paused at step 2/3 with the candidate at 10%, waiting at a manual gate; `rollout resume` opens it"
    )


def test_status_says_what_the_notifications_did() -> None:
    pending = PendingNotification(id="3", event="promoted", at=NOW, destinations=["chat"], data={})
    ledger = NotificationLedger(
        sequence=3, pending=[pending], delivered=4, failed=1, last_failure="rolledBack to chat: answered 404"
    )
    text = render_status(rollout(phase=Phase.SUCCEEDED, notifications=ledger), [], [], NOW)
    assert (
        "Notifications: 4 delivered, 1 given up, waiting: promoted (last given up: rolledBack to chat: answered 404)"
        in text
    )
    assert "Notifications" not in render_status(rollout(phase=Phase.SUCCEEDED), [], [], NOW)


def test_status_says_when_the_candidate_waits_for_its_pods() -> None:
    waiting = rollout(phase=Phase.PENDING, short_since=NOW, candidate_pods=1, candidate_wanted_pods=2)
    assert headline(waiting) == "Waiting for revision hello-00002's pods: 1 of 2 ready"


def test_a_pre_warm_hold_is_shown_with_what_it_was_sized_from() -> None:
    r = rollout(phase=Phase.PROGRESSING, prewarm_pods=5, stable_pods_before=10, canary_weight=25)
    text = render_status(r, [r], [], NOW)
    assert "Pre-warm:   candidate held at min-scale 5 for its next share" in text
    assert "stable ran 10 pods at the start" in text
    assert "Pre-warm" not in render_status(rollout(phase=Phase.SUCCEEDED), [], [], NOW)


def test_a_probe_says_so_in_the_first_line() -> None:
    probed = {"strategy": {"canary": {"stepWeight": 10, "maxWeight": 50, "probe": {"weight": 1}}}}
    r = make_rollout(probed)
    status = r.status.model_copy(update={"phase": Phase.PROGRESSING, "canary_weight": 1, "step_count": 6})
    assert headline(r.model_copy(update={"status": status})) == "Step 1/6: probe, 1% to the candidate"
    later = status.model_copy(update={"current_step": 1, "canary_weight": 10})
    assert headline(r.model_copy(update={"status": later})) == "Step 2/6: 10% to the candidate"
