"""Notifications delivered to local receivers on 127.0.0.1 that check the services' published formats (Slack
Block Kit through Slack's SDK, the Adaptive Card schema, CloudEvents through its SDK), and the notifier's
rules: retries, Secrets that opt in, the allow-list, the bounded queue, the ledger's answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rollout.api.notifications import Notification, NotificationsConfig
from rollout.api.rollout import Rollout, Verdict
from rollout.controller.egress import Destinations
from rollout.controller.metrics import ControllerMetrics
from rollout.controller.notifier import NotificationSettings, Notifier
from rollout.controller.outbound import SIGNATURE_HEADER, Attempts, signature
from rollout.engine import notices
from rollout.engine.inputs import AnalysisUpdate
from tests.analysis.conftest import DictSecrets
from tests.engine.world import World, make_rollout, results
from tests.local_http import serving
from tests.receivers import Receivers, app, check_slack, check_teams

LOCAL = Destinations.parse(["127.0.0.0/8"])
FAST = Attempts(timeout=2.0, retries=3, deadline=10.0)


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[str, Receivers]]:
    state = Receivers()
    async with serving(app(state)) as url:
        yield url, state


def policy(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "strategy": {"canary": {"steps": [{"weight": 10, "bake": "1m"}]}},
        "analysis": {"metrics": [{"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}}]},
        "notifications": [
            {"name": "slack", "type": "slack", "urlFrom": {"name": "chat", "key": "slack"}},
            {"name": "teams", "type": "teams", "urlFrom": {"name": "chat", "key": "teams"}},
            {"name": "hook", "type": "webhook", "url": f"{url}/webhook"},
            {"name": "ce", "type": "cloudEvents", "url": f"{url}/ce"},
            {"name": "ce-structured", "type": "cloudEvents", "url": f"{url}/ce", "mode": "structured"},
        ],
        **extra,
    }


def rolled_back(url: str, **extra: Any) -> Rollout:
    """A rollout that started and rolled back on error-rate, its two events in the ledger."""
    w = World(make_rollout(policy(url, **extra)))
    names = [n.name for n in w.rollout.spec.policy.spec.notifications]
    for update in (None, None, "fail"):
        before = w.rollout
        analysis = None
        if update:
            bad = results(w.now, verdict=Verdict.FAIL, names=("error-rate",))[0]
            bad = bad.model_copy(update={"value": 0.12, "stable_value": 0.004, "threshold_max": 0.05})
            analysis = AnalysisUpdate(w.now, (bad,), {}, failed=("error-rate",))
        d = w.tick(61 if update else 5, analysis=analysis)
        status = notices.record(before.status, d, before, w.now, lambda e: list(names))
        w.rollout = w.rollout.model_copy(update={"status": status})
    return w.rollout


class Woken(list[Any]):
    """The notifier's re-queue callback: the targets woken, and an event set at each."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def __call__(self, target: Any) -> None:
        self.append(target)
        self.event.set()


def notifier(
    secrets: DictSecrets | None = None, config: NotificationsConfig | None = None, **kw: Any
) -> tuple[Notifier, Woken, ControllerMetrics]:
    woken = Woken()
    metrics = ControllerMetrics()
    settings = NotificationSettings(
        config or NotificationsConfig(), kw.pop("destinations", LOCAL), kw.pop("key", None), FAST
    )
    return Notifier(settings, woken, metrics, secrets=secrets, backoff=0.01, **kw), woken, metrics


def chat_secret(url: str, private: bool = False) -> DictSecrets:
    secrets = {("default", "chat"): {"slack": f"{url}/slack".encode(), "teams": f"{url}/teams".encode()}}
    return DictSecrets(secrets, frozenset({("default", "chat")}) if private else frozenset())


async def deliver_all(n: Notifier, rollout: Rollout, within: float = 10.0) -> dict[Any, Any]:
    """Send the ledger and wait until every delivery has answered."""
    woken = n.calls.notify
    assert isinstance(woken, Woken)
    n.send("target", rollout, rollout.status)
    wanted = len(notices.waiting(rollout.status))
    async with asyncio.timeout(within):
        while len(n.answers(rollout)) < wanted:
            woken.event.clear()
            await woken.event.wait()
    return n.answers(rollout)


async def delivered(
    rollout: Rollout, secrets: DictSecrets | None = None, **kw: Any
) -> tuple[Any, Any, Woken]:
    """A notifier (see `notifier`) that delivers the rollout's ledger and is closed: its answers, its
    metrics and the targets it woke."""
    n, woken, metrics = notifier(secrets, **kw)
    try:
        return await deliver_all(n, rollout), metrics, woken
    finally:
        await n.close()


def sample(metrics: ControllerMetrics, kind: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "knrollout_notifications_total", {"type": kind, "outcome": outcome}
    )
    return value or 0.0


async def test_every_kind_of_destination_gets_its_published_format(receivers: tuple[str, Receivers]) -> None:
    url, got = receivers
    rollout = rolled_back(url)
    answers, metrics, woken = await delivered(rollout, chat_secret(url))
    assert all(a.ok for a in answers.values()), answers
    assert got.problems == []
    assert len(got.got) == 10 and set(woken) == {"target"}  # 2 events x 5 destinations
    slack = got.of("slack")[-1].body
    assert slack["blocks"][0]["text"]["text"] == "Rolled back: hello (default)"
    assert "canary error-rate 12.00% vs stable 0.40%" in slack["blocks"][1]["text"]["text"]
    assert "kubectl knrollout status hello -n default" in str(slack["blocks"][-1])
    card = got.of("teams")[-1].body["attachments"][0]["content"]
    assert {"title": "Candidate", "value": "hello-00002 at 0%"} in card["body"][2]["facts"]
    ces = got.of("ce")
    assert sorted(r.event for r in ces) == sorted(
        ["dev.knrollout.rollout.started", "dev.knrollout.rollout.rolledback"] * 2
    )
    attrs = ces[-1].body["attributes"]
    assert attrs["source"] == "/apis/knrollout.dev/v1alpha1/namespaces/default/rollouts/hello-00002"
    assert attrs["subject"] == "hello" and ces[-1].body["data"]["phase"] == "RolledBack"
    hooks = got.of("webhook")
    assert [h.body["id"] for h in hooks] == ["1", "2"] and hooks[1].body["data"][
        "reason"
    ] == "RegressionDetected"
    assert sample(metrics, "slack", "delivered") == 2 and sample(metrics, "cloudEvents", "delivered") == 4


def test_the_receivers_refuse_what_the_services_would_refuse() -> None:
    """The checks can fail: a header past Slack's 150 characters, a card fact without its value."""
    too_long = {
        "text": "x",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
    }
    assert check_slack(too_long)
    assert check_slack({"blocks": [{"type": "divider"}]})  # no fallback text
    card = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "FactSet", "facts": [{"title": "a"}]}],
    }
    message = {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }
    assert check_teams(message)


async def test_failed_attempts_are_retried_and_a_body_is_signed(receivers: tuple[str, Receivers]) -> None:
    url, got = receivers
    got.fail_first = 2
    rollout = rolled_back(url)
    key = b"0123456789abcdef-signing"
    answers, _, _ = await delivered(rollout, chat_secret(url), key=key)
    assert all(a.ok for a in answers.values()) and got.failures["webhook"] == 4  # 2 refused, 2 delivered
    hooks = got.of("webhook")
    assert len(hooks) == 2  # each event once
    for hook, raw in zip(hooks, got.raw, strict=True):
        stamp = hook.headers["X-Rollout-Timestamp"]
        assert hook.headers[SIGNATURE_HEADER] == signature(key, stamp, raw)


async def test_a_url_only_comes_from_a_secret_that_opted_in(receivers: tuple[str, Receivers]) -> None:
    url, got = receivers
    rollout = rolled_back(url)
    answers, metrics, _ = await delivered(rollout, chat_secret(url, private=True))
    slack = answers[("1", "slack")]
    assert not slack.ok and "has not opted in" in slack.message
    assert got.of("slack") == [] and got.of("teams") == []
    assert sample(metrics, "slack", "failed") == 2
    with pytest.raises(ValueError, match="is a secret and must not be written in a policy"):
        Notification.model_validate(
            {"name": "s", "type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}
        )


async def test_a_destination_the_admins_do_not_allow_is_refused(receivers: tuple[str, Receivers]) -> None:
    url, got = receivers
    rollout = rolled_back(url)
    answers, metrics, _ = await delivered(
        rollout, chat_secret(url), destinations=Destinations.parse(["hooks.example.com"])
    )
    assert not any(a.ok for a in answers.values()) and got.got == []
    assert "a loopback address" in answers[("1", "hook")].message
    assert sample(metrics, "webhook", "refused") == 2


async def test_the_admins_destinations_are_allowed_for_themselves_alone(
    receivers: tuple[str, Receivers],
) -> None:
    url, got = receivers
    local = url.replace("127.0.0.1", "localhost")
    config = NotificationsConfig.model_validate(
        {
            "destinations": [
                {"name": "ops", "type": "slack", "url": f"{local}/slack", "events": ["rolledBack"]}
            ],
            "statusUrl": "https://console.example.com/rollouts/{namespace}/{name}",
        }
    )
    rollout = rolled_back(url, notifications=[])
    ledger = rollout.status.notifications
    assert ledger is None  # the policy sends nothing: its rollout records nothing
    w = World(make_rollout({"strategy": {"canary": {"steps": [{"weight": 10, "bake": "1m"}]}}}))
    before = w.rollout
    d = w.tick(5, analysis=None)
    status = notices.record(before.status, d, before, w.now, lambda e: ["controller/ops", "controller/gone"])
    started = w.rollout.model_copy(update={"status": status})
    # localhost is not on the shared allow-list: only the admins' own destination may go there
    answers, _, _ = await delivered(
        started, None, destinations=Destinations.parse(["hooks.example.com"]), config=config
    )
    assert answers[("1", "controller/ops")].ok, answers
    assert "no longer configured" in answers[("1", "controller/gone")].message
    link = got.of("slack")[0].body["blocks"][-1]["elements"][0]["text"]
    assert link == "<https://console.example.com/rollouts/default/hello-00002|Rollout status>"


async def test_past_its_bound_the_queue_drops_and_counts(receivers: tuple[str, Receivers]) -> None:
    url, got = receivers
    rollout = rolled_back(url)
    answers, metrics, _ = await delivered(rollout, chat_secret(url), config=NotificationsConfig(queue=3))
    dropped = [a for a in answers.values() if "queue is full" in a.message]
    assert len(dropped) == 7 and len(got.got) == 3
    assert (
        metrics.registry.get_sample_value("knrollout_notifications_total", {"type": "", "outcome": "dropped"})
        == 7
    )
    settled = notices.settle(rollout.status, answers)
    assert settled.notifications is not None and settled.notifications.pending == []
    assert settled.notifications.failed == 7 and "queue is full" in settled.notifications.last_failure


async def test_answers_stay_until_the_ledger_holds_them(receivers: tuple[str, Receivers]) -> None:
    url, got = receivers
    rollout = rolled_back(url)
    n, _, _ = notifier(chat_secret(url))
    try:
        answers = await deliver_all(n, rollout)
        n.send(
            "target", rollout, rollout.status
        )  # a reconcile whose write conflicted sends again: nothing new
        assert n.answers(rollout) == answers and len(got.got) == 10
        n.acknowledge(rollout, answers)
        assert n.answers(rollout) == {}
        settled = rollout.model_copy(update={"status": notices.settle(rollout.status, answers)})
        n.send("target", settled, settled.status)
        assert n.calls.in_flight == 0 and len(got.got) == 10
    finally:
        await n.close()


async def test_a_replica_that_stops_leading_abandons_its_deliveries(receivers: tuple[str, Receivers]) -> None:
    url, got = receivers
    got.hold = asyncio.Event()  # every request waits unanswered
    rollout = rolled_back(url)
    n, woken, _ = notifier(chat_secret(url))
    try:
        n.send("target", rollout, rollout.status)
        await asyncio.wait_for(got.arrived.wait(), timeout=10)
        assert n.calls.in_flight == 10
        n.calls.abandon()  # what the controller does when it loses the lease
        await asyncio.sleep(0.05)
        assert n.calls.in_flight == 0 and n.answers(rollout) == {} and woken == []
    finally:
        got.hold.set()
        await n.close()
    await asyncio.sleep(0.1)  # the held requests resume and find their sender gone
    assert got.got == []
