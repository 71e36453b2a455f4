"""Webhook calls against a local server on 127.0.0.1: payload, success, retries on 5xx, no retry on 4xx,
timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from rollout.api.policy import Webhook, WebhookType
from rollout.api.rollout import Phase
from rollout.controller.egress import Destinations
from rollout.controller.webhooks import WebhookCaller, WebhookRunner, WebhookSettings
from rollout.engine.inputs import WebhookResult
from rollout.engine.webhooks import WebhookCall
from tests.controller.objects import rollout
from tests.local_http import serving

LOCAL = WebhookSettings(Destinations.parse(["127.0.0.1/32"]))


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
    caller = WebhookCaller(LOCAL, backoff=0.01, max_backoff=0.02)
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
        results = {
            c.key: await caller.call(r, c)
            for c in (call(f"{url}/ok", key="a"), call(f"{url}/denied", retries=0, key="b"))
        }
        assert results["a"].ok and not results["b"].ok
    finally:
        await caller.close()


class _SlowCaller(WebhookCaller):
    """Answers after `gate` opens; counts calls in flight per namespace."""

    def __init__(self) -> None:
        super().__init__(LOCAL)
        self.gate = asyncio.Event()
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def call(self, rollout: Any, call: WebhookCall) -> Any:
        ns = rollout.metadata.namespace
        self.running[ns] = self.running.get(ns, 0) + 1
        self.peak[ns] = max(self.peak.get(ns, 0), self.running[ns])
        try:
            if ns == "slow":
                await self.gate.wait()
            return WebhookResult(True, 200, "ok")
        finally:
            self.running[ns] -= 1


def _in(namespace: str, name: str) -> Any:
    r = rollout(phase=Phase.PROGRESSING)
    meta = r.metadata.model_copy(update={"namespace": namespace, "name": name})
    return r.model_copy(update={"metadata": meta})


async def test_the_runner_starts_recorded_calls_bounds_each_namespace_and_requeues() -> None:
    caller = _SlowCaller()
    woken: list[str] = []
    runner = WebhookRunner(caller, woken.append, per_namespace=2)
    slow = [_in("slow", f"r{i}") for i in range(4)]
    hook = call("http://127.0.0.1:9/x", key="step-0/gate")
    try:
        for r in slow:
            results, starting = runner.collect(r, [hook])
            assert results == {} and [c.key for c in starting] == ["step-0/gate"]
            runner.start(f"slow/{r.metadata.name}", r, starting)
        await asyncio.sleep(0.05)
        assert caller.peak["slow"] == 2  # the namespace's bound, not 4
        assert runner.pending(slow[0]) == ["step-0/gate"]
        # another namespace is served at once, while "slow" waits
        fast = _in("fast", "f")
        _, starting = runner.collect(fast, [hook])
        runner.start("fast/f", fast, starting)
        for _ in range(50):
            if "fast/f" in woken:
                break
            await asyncio.sleep(0.01)
        assert woken == ["fast/f"]
        results, starting = runner.collect(fast, [hook])
        assert results["step-0/gate"].ok and starting == []
        # asked again while running: nothing new starts
        assert runner.collect(slow[0], [hook]) == ({}, [])
        caller.gate.set()
        for _ in range(100):
            if len(woken) == 5:
                break
            await asyncio.sleep(0.01)
        assert sorted(woken) == ["fast/f", "slow/r0", "slow/r1", "slow/r2", "slow/r3"]
        # a rollback hook's answer is delivered at the next decision, although no longer due then
        poll = call("http://127.0.0.1:9/x", key="rollback/alarm")
        _, starting = runner.collect(fast, [poll])
        runner.start("fast/f", fast, starting)
        await asyncio.sleep(0.05)
        results, _ = runner.collect(fast, [])
        assert list(results) == ["rollback/alarm"]
        # one that answers after its rollout ended is dropped, not kept for a decision that never comes
        _, starting = runner.collect(fast, [poll])
        runner.start("fast/f", fast, starting)
        await asyncio.sleep(0.05)
        ended = fast.model_copy(update={"status": fast.status.model_copy(update={"phase": Phase.SUCCEEDED})})
        assert runner.collect(ended, []) == ({}, []) and runner.collect(fast, []) == ({}, [])
    finally:
        await runner.close()
