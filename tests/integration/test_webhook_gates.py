"""Policy webhooks called by the controller (on 127.0.0.1): a confirm-promotion gate holds the rollout at its
last step until it answers 2xx; a failing step hook rolls the candidate back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from rollout.api.rollout import Phase
from tests.integration.harness import controller, events_for, eventually, finished, onboard, phase_of, sandbox
from tests.local_http import serving


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"confirm": 403, "calls": [], "notified": []}

    async def notify(request: web.Request) -> web.Response:
        state["notified"].append(await request.json())
        return web.Response(status=200)

    async def confirm(request: web.Request) -> web.Response:
        state["calls"].append(await request.json())
        return web.Response(status=state["confirm"], text="not yet" if state["confirm"] >= 300 else "go")

    async def broken(request: web.Request) -> web.Response:
        state["calls"].append(await request.json())
        return web.Response(status=500, text="load test failed: p99 2.3s")

    app = web.Application()
    app.router.add_post("/confirm", confirm)
    app.router.add_post("/broken", broken)
    app.router.add_post("/notify", notify)
    async with serving(app) as url:
        yield url, state


def policy(webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "1s"}},
        "analysis": {"interval": "1s", "metrics": []},
        "webhooks": webhooks,
    }


async def test_confirm_promotion_gate_holds_until_it_answers_2xx(hooks: tuple[str, dict[str, Any]]) -> None:
    url, state = hooks
    async with sandbox() as cluster:
        hook = {"name": "release-manager", "type": "confirmPromotion", "url": f"{url}/confirm", "retries": 0}
        notify = {"name": "chat", "type": "postRollout", "url": f"{url}/notify", "retries": 0}
        cluster.apply_policy("canary", policy([hook, notify]))
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: len(state["calls"]) >= 2, within=20)  # asked, refused, asked again
            r = cluster.rollout("hello-00002.1")
            assert r is not None and r.status.phase == Phase.PROGRESSING and r.status.current_step == 1
            assert state["calls"][0]["key"] == "confirmPromotion/release-manager"
            assert (
                state["calls"][0]["candidateRevision"] == "hello-00002"
                and state["calls"][0]["canaryWeight"] == 50
            )
            state["confirm"] = 200
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=20)
            assert done.status.phase == Phase.SUCCEEDED
            assert "confirmPromotion/release-manager" in done.status.completed_webhooks
            # the postRollout hook is told once the rollout has finished, and only once
            await eventually(lambda: state["notified"], within=5)
            settled = await eventually(
                lambda: (
                    (r := cluster.rollout("hello-00002.1"))
                    and "postRollout/chat" in r.status.completed_webhooks
                )
            )
            assert settled and len(state["notified"]) == 1
            assert (
                state["notified"][0]["key"] == "postRollout/chat"
                and state["notified"][0]["phase"] == "Succeeded"
            )


async def test_a_failing_step_webhook_rolls_back(hooks: tuple[str, dict[str, Any]]) -> None:
    url, state = hooks
    async with sandbox() as cluster:
        hook = {"name": "load-test", "type": "step", "url": f"{url}/broken", "retries": 1}
        cluster.apply_policy("canary", policy([hook]))
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") is not None, within=10)
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=20)
            assert done.status.phase == Phase.ROLLED_BACK and done.status.reason == "StepWebhookFailed"
            failed = await events_for(cluster, "hello-00002.1", "WebhookFailed")
            assert "load test failed: p99 2.3s" in failed[0]["message"]
            assert len(state["calls"]) == 2  # one retry, then the answer stands
