"""Which notification events each decision raises, and the ledger that carries them (rollout.engine.notices)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rollout.api.notifications import MAX_PENDING, Notification, NotificationEvent
from rollout.api.rollout import Phase, RequestAction, Verdict
from rollout.engine import notices
from rollout.engine.inputs import AnalysisUpdate, Decision
from rollout.engine.notices import Delivery
from rollout.engine.windows import analysis_due
from tests.engine.world import World, make_rollout, results

E = NotificationEvent
POLICY: dict[str, Any] = {
    "strategy": {
        "canary": {"steps": [{"weight": 10, "bake": "1m"}, {"pause": {}}, {"weight": 50, "bake": "1m"}]}
    },
    "analysis": {"metrics": [{"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}}]},
}


class Ledgered(World):
    """A World whose decisions go through the ledger, as the controller records them."""

    def step(self, seconds: float = 5, **kw: Any) -> list[NotificationEvent]:
        before = self.rollout
        d = self.tick(seconds, **kw)
        status = notices.record(before.status, d, before, self.now, lambda e: ["chat", "controller/ops"])
        self.rollout = self.rollout.model_copy(update={"status": status})
        return notices.events_of(before.status, d)


def walk_step(w: Ledgered) -> list[NotificationEvent]:
    start, seen = w.status.current_step, []
    for _ in range(100):
        due = analysis_due(w.rollout, w.now + timedelta(seconds=30))
        seen += w.step(30, analysis=w.passing() if due else None)
        if w.status.current_step != start or w.status.phase != Phase.PROGRESSING:
            return seen
    raise AssertionError("the step never ended")


def test_a_promoted_rollout_raises_started_steps_the_gate_and_promoted_once_each() -> None:
    w = Ledgered(make_rollout(POLICY))
    seen = w.step() + w.step()
    seen += walk_step(w)  # 10% -> gate
    assert w.status.phase == Phase.PAUSED
    w.request(RequestAction.RESUME, by="oidc:alice@example.com")
    seen += w.step()
    seen += walk_step(w)  # 50% -> promoting
    for _ in range(3):
        seen += w.step()
    assert w.status.phase == Phase.SUCCEEDED
    assert seen == [E.STARTED, E.STEP_ADVANCED, E.PAUSED, E.STEP_ADVANCED, E.PROMOTED]
    ledger = w.status.notifications
    assert ledger is not None and ledger.sequence == 5
    assert [p.id for p in ledger.pending] == ["1", "2", "3", "4", "5"]
    assert all(p.destinations == ["chat", "controller/ops"] for p in ledger.pending)
    promoted = ledger.pending[-1].data
    assert promoted["phase"] == "Succeeded" and promoted["headline"].startswith("Promoted")
    assert promoted["canaryWeight"] == 100 and promoted["candidateRevision"] == "hello-00002"
    resumed = ledger.pending[3].data
    assert resumed["requestedBy"] == "oidc:alice@example.com"  # the gate was opened by a person


def test_a_failed_metric_is_one_rolled_back_event_with_its_evidence() -> None:
    w = Ledgered(make_rollout(POLICY))
    w.step(), w.step()
    bad = results(w.now, verdict=Verdict.FAIL, names=("error-rate",))
    bad = tuple(
        r.model_copy(update={"value": 0.12, "stable_value": 0.004, "threshold_max": 0.05}) for r in bad
    )
    update = AnalysisUpdate(w.now, bad, {}, failed=("error-rate",), summary="error-rate 12% > 5%")
    seen = w.step(61, analysis=update)
    assert w.status.phase == Phase.ROLLED_BACK
    assert seen == [E.ROLLED_BACK]  # not also regressionDetected: the rollback says it
    data = w.status.notifications.pending[-1].data
    row = data["evidence"][0]
    assert (row["metric"], row["verdict"], row["canaryText"], row["stableText"]) == (
        "error-rate",
        "Fail",
        "12.00%",
        "0.40%",
    )
    assert row["threshold"] == "<= 5.00%"


def test_a_failure_below_the_limit_is_a_regression_detected_once() -> None:
    policy = {
        **POLICY,
        "analysis": {"metrics": [{**POLICY["analysis"]["metrics"][0], "failureLimit": {"consecutive": 3}}]},
    }
    w = Ledgered(make_rollout(policy))
    w.step(), w.step()

    def failing(consecutive: int) -> AnalysisUpdate:
        r = results(w.now, verdict=Verdict.FAIL, names=("error-rate",))[0]
        return AnalysisUpdate(w.now, (r.model_copy(update={"consecutive_failures": consecutive}),), {})

    assert w.step(30, analysis=failing(1)) == [E.REGRESSION_DETECTED]
    assert w.step(30, analysis=failing(2)) == []  # the same streak: said once
    assert w.status.phase == Phase.PROGRESSING


def test_only_the_destinations_that_want_an_event_get_it_and_unwanted_events_are_not_kept() -> None:
    chat = Notification.model_validate(
        {"name": "chat", "type": "webhook", "url": "https://h/x", "events": ["promoted"]}
    )
    ops = Notification.model_validate({"name": "ops", "type": "webhook", "url": "https://h/y"})
    assert notices.recipients(E.STARTED, [chat], [ops]) == ["controller/ops"]
    assert notices.recipients(E.PROMOTED, [chat], [ops]) == ["chat", "controller/ops"]
    w = World(make_rollout(POLICY))
    before = w.rollout
    d = w.tick()
    assert notices.record(before.status, d, before, w.now, lambda e: []).notifications is None


def test_settling_counts_answers_and_keeps_what_has_not_answered() -> None:
    w = Ledgered(make_rollout(POLICY))
    w.step()
    status = w.status
    answers = {("1", "chat"): Delivery(True), ("1", "controller/ops"): Delivery(False, "answered 500")}
    settled = notices.settle(status, answers)
    ledger = settled.notifications
    assert ledger is not None and ledger.pending == [] and (ledger.delivered, ledger.failed) == (1, 1)
    assert ledger.last_failure == "started to controller/ops: answered 500"
    partly = notices.settle(status, {("1", "chat"): Delivery(True)})
    assert partly.notifications.pending[0].destinations == ["controller/ops"]  # type: ignore[union-attr]
    assert notices.waiting(partly)[0][1] == "controller/ops"


def test_a_full_ledger_gives_up_on_the_oldest_events_and_says_so() -> None:
    w = Ledgered(make_rollout(POLICY))
    w.step()
    base = w.status
    d: Decision = w.history[-1]
    status = base
    for _ in range(MAX_PENDING + 3):  # the same decision recorded again and again: one event each time
        status = notices.record(
            base.model_copy(update={"phase": Phase.PENDING}),
            Decision(status, d.plan, event=d.event, row=d.row),
            w.rollout,
            w.now,
            lambda e: ["chat"],
        )
    ledger = status.notifications
    assert ledger is not None and len(ledger.pending) == MAX_PENDING
    # ids 1 to 4 dropped: the first went to two destinations, the others to one
    assert ledger.failed == 5 and "dropped" in ledger.last_failure
    assert ledger.pending[0].id == "5" and ledger.pending[-1].id == str(MAX_PENDING + 4)
