"""Webhook calls against a local server on 127.0.0.1: payload, success, retries on 5xx, no retry on 4xx,
timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from rollout.api.policy import Webhook, WebhookType
from rollout.controller.webhooks import WebhookCaller
from rollout.engine.webhooks import WebhookCall
from tests.controller.objects import rollout
from tests.local_http import serving


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"bodies": [], "flaky": 0}

    async def ok(request: web.Request) -> web.Response:
        state["bodies"].append(await request.json())
        return web.Response(text="fine")

    async def flaky(request: web.Request) -> web.Response:
        state["flaky"] += 1
        return web.Response(status=503 if state["flaky"] < 3 else 200, text="later")

    async def denied(request: web.Request) -> web.Response:
        state["denied"] = state.get("denied", 0) + 1
        return web.Response(status=403, text="not now")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.6)
        return web.Response(text="too late")

    app = web.Application()
    for path, handler in (("/ok", ok), ("/flaky", flaky), ("/denied", denied), ("/slow", slow)):
        app.router.add_post(path, handler)
    async with serving(app) as url:
        yield url, state


def call(url: str, retries: int = 2, timeout: str = "1s", key: str = "step-0/gate") -> WebhookCall:
    hook = Webhook.model_validate(
        {
            "name": "gate",
            "type": "step",
            "url": url,
            "retries": retries,
            "timeout": timeout,
            "metadata": {"team": "a"},
        }
    )
    assert hook.type == WebhookType.STEP
    return WebhookCall(key, hook)


async def test_webhook_outcomes(server: tuple[str, dict[str, Any]]) -> None:
    url, state = server
    caller = WebhookCaller(backoff=0.01, max_backoff=0.02)
    r = rollout()
    try:
        ok = await caller.call(r, call(f"{url}/ok"))
        assert ok.ok and ok.status_code == 200 and ok.message == "fine"
        (body,) = state["bodies"]
        assert (
            body["name"] == "hello-00002.1"
            and body["key"] == "step-0/gate"
            and body["metadata"] == {"team": "a"}
        )
        assert (body["stableRevision"], body["candidateRevision"], body["phase"]) == (
            "hello-00001",
            "hello-00002",
            "Pending",
        )
        flaky = await caller.call(r, call(f"{url}/flaky", retries=3))
        assert flaky.ok and state["flaky"] == 3
        denied = await caller.call(r, call(f"{url}/denied", retries=3))
        assert not denied.ok and denied.status_code == 403 and state["denied"] == 1  # a 4xx is an answer
        slow = await caller.call(r, call(f"{url}/slow", retries=1, timeout="200ms"))
        assert not slow.ok and slow.status_code is None and "Timeout" in slow.message
        results = await caller.call_all(
            r, [call(f"{url}/ok", key="a"), call(f"{url}/denied", retries=0, key="b")]
        )
        assert results["a"].ok and not results["b"].ok
    finally:
        await caller.close()
