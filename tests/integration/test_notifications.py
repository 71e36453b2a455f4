"""Notifications end to end in the sandbox: one rollout promoted and one rolled back, told to a Slack-like, a
Teams-like, a generic JSON and a CloudEvents receiver on 127.0.0.1 (each checking the service's published
format), and to an admins' CloudEvents sink; each message exactly once, although the first controller
recorded every decision and was stopped before it sent anything, and a third controller started after."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rollout.api.notifications import NotificationsConfig
from rollout.api.rollout import Phase
from rollout_lab.sandbox.apiserver import kinds
from tests.integration.harness import (
    NS,
    Cluster,
    controller,
    controller_process,
    eventually,
    finished,
    kill,
    onboard,
    sandbox,
    settles,
)
from tests.local_http import serving
from tests.receivers import Receivers, app

STEPS = {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "1s"}}


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[str, Receivers]]:
    state = Receivers()
    async with serving(app(state)) as url:
        yield url, state


def policy(url: str, webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "strategy": STEPS,
        "analysis": {"interval": "1s", "metrics": []},
        "webhooks": webhooks,
        "notifications": [
            {"name": "slack", "type": "slack", "urlFrom": {"name": "chat", "key": "slack"}},
            {"name": "teams", "type": "teams", "urlFrom": {"name": "chat", "key": "teams"}},
            {"name": "hook", "type": "webhook", "url": f"{url}/webhook"},
            {"name": "ce", "type": "cloudEvents", "url": f"{url}/ce", "mode": "structured"},
        ],
    }


def chat_secret(cluster: Cluster, url: str) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    cluster.store.create(
        kinds.SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "chat",
                "namespace": NS,
                "labels": {"knrollout.dev/metric-credentials": "true"},
            },
            "data": {"slack": b64(f"{url}/slack"), "teams": b64(f"{url}/teams")},
        },
    )


def ledgers_empty(cluster: Cluster, *names: str) -> bool:
    rollouts = [cluster.rollout(n) for n in names]
    return all(r is not None and r.status.notifications is not None for r in rollouts) and all(
        r is not None and r.status.notifications is not None and not r.status.notifications.pending
        for r in rollouts
    )


async def test_each_message_arrives_once_across_a_stop_before_the_send(
    receivers: tuple[str, Receivers],
) -> None:
    url, got = receivers
    admins = NotificationsConfig.model_validate(
        {
            "destinations": [
                {
                    "name": "platform",
                    "type": "cloudEvents",
                    "url": f"{url}/platform",
                    "events": ["rolledBack"],
                }
            ]
        }
    )
    async with sandbox() as cluster:
        chat_secret(cluster, url)
        cluster.apply_policy("canary", policy(url, []))
        broken = {"name": "load-test", "type": "step", "url": f"{url}/missing", "retries": 0}
        cluster.apply_policy("fragile", policy(url, [broken]))
        async with controller(cluster, notifications=admins) as first:
            # stopped between the decision and the send: the decisions are recorded, nothing goes out
            first.notifier.send = lambda *args: None  # type: ignore[method-assign]
            await onboard(cluster, "hello")
            await onboard(cluster, "shop", policy="fragile")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            cluster.new_revision("shop", "ghcr.io/acme/shop:v2")
            promoted = await eventually(lambda: finished(cluster, "hello-00002.1"), within=30)
            rolled_back = await eventually(lambda: finished(cluster, "shop-00002.1"), within=30)
        assert promoted.status.phase == Phase.SUCCEEDED and rolled_back.status.phase == Phase.ROLLED_BACK
        assert got.got == []
        waiting = {
            r.metadata.name: [p.event.value for p in r.status.notifications.pending]
            for r in (promoted, rolled_back)
        }
        assert waiting == {
            "hello-00002.1": ["started", "stepAdvanced", "promoted"],
            "shop-00002.1": ["started", "rolledBack"],
        }
        async with controller(cluster, notifications=admins):
            await eventually(lambda: ledgers_empty(cluster, "hello-00002.1", "shop-00002.1"), within=30)
        async with controller(cluster, notifications=admins) as third:
            await settles(third)
    assert got.problems == []
    for kind in ("slack", "teams", "webhook", "ce"):
        keys = Counter(r.key for r in got.of(kind))
        assert len(keys) == 5 and set(keys.values()) == {1}, (kind, keys)
    titles = sorted(r.key for r in got.of("slack"))
    assert titles == [
        "Promoted: hello (default)",
        "Rolled back: shop (default)",
        "Rollout started: hello (default)",
        "Rollout started: shop (default)",
        "Rollout step advanced: hello (default)",
    ]
    platform = got.of("platform")
    assert [r.event for r in platform] == ["dev.knrollout.rollout.rolledback"]
    assert platform[0].body["data"]["reason"] == "StepWebhookFailed"
    final = {
        r.metadata.name: r.status.notifications
        for r in (cluster.rollout("hello-00002.1"), cluster.rollout("shop-00002.1"))
        if r
    }
    assert final["hello-00002.1"].delivered == 12 and final["shop-00002.1"].delivered == 9  # type: ignore[union-attr]


async def test_a_controller_killed_mid_send_loses_no_message_and_doubles_none(
    receivers: tuple[str, Receivers], tmp_path: Path
) -> None:
    """SIGKILL while the first message is on the wire, unanswered: the next controller sends it, once."""
    url, got = receivers
    got.hold = asyncio.Event()
    allow = ("--webhook-allow", "127.0.0.0/8")
    log = tmp_path / "controller.log"
    async with sandbox() as cluster:
        chat_secret(cluster, url)
        cluster.apply_policy("canary", policy(url, []))
        async with controller_process(cluster.kubeconfig, log, *allow) as first:
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await asyncio.wait_for(got.arrived.wait(), timeout=30)  # the decision is recorded, a send is out
            await kill(first)
        before = cluster.rollout("hello-00002.1")
        assert before is not None and before.status.notifications is not None
        assert before.status.notifications.pending[0].event.value == "started"
        got.hold.set()  # the first controller's requests find their sender gone
        async with controller_process(cluster.kubeconfig, log, *allow):
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=40)
            await eventually(lambda: ledgers_empty(cluster, "hello-00002.1"), within=30)
    assert done.status.phase == Phase.SUCCEEDED and got.problems == []
    for kind in ("slack", "teams", "webhook", "ce"):
        keys = Counter(r.key for r in got.of(kind))
        assert len(keys) == 3 and set(keys.values()) == {1}, (kind, keys)  # started, stepAdvanced, promoted
