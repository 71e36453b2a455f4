"""Fault injection: errors (500, 429 with Retry-After, 409), latency, dropped and expired watches, switched
at run time through the Python API and the /_sandbox/faults endpoint, each bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from rollout_lab.sandbox.apiserver import FaultInjector
from tests.sandbox.apiserver.cluster_fixture import KSVC, Cluster, status_of

G, V, P = KSVC


async def get_a(cluster: Cluster) -> dict[str, Any]:
    found: dict[str, Any] = await cluster.custom.get_namespaced_custom_object(G, V, cluster.namespace, P, "a")
    return found


async def test_error_faults_are_counted(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    await cluster.create_ksvc("a")
    fault = srv.faults.add(action="error", code=500, count=2, verbs=["get"], resources=["services"])
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            await get_a(cluster)
        assert status_of(err.value)["reason"] == "InternalError"
    assert (await get_a(cluster))["metadata"]["name"] == "a"
    assert fault.injected == 2 and srv.faults.active() == []


async def test_too_many_requests_carries_retry_after(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    await cluster.create_ksvc("a")
    srv.faults.add(action="error", code=429, retry_after=3, count=1)
    raw = await cluster.raw("GET", f"/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}/a")
    assert raw.status == 429 and raw.headers["Retry-After"] == "3"
    assert raw.body["reason"] == "TooManyRequests" and raw.body["details"]["retryAfterSeconds"] == 3


async def test_conflict_fault_on_updates(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    svc = await cluster.create_ksvc("a")
    srv.faults.add(action="error", code=409, count=1, verbs=["update", "patch"])
    with pytest.raises(ApiException) as err:
        await cluster.custom.replace_namespaced_custom_object(G, V, cluster.namespace, P, "a", svc)
    body = status_of(err.value)
    assert body["reason"] == "Conflict" and "the object has been modified" in body["message"]


async def test_latency_fault(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    await cluster.create_ksvc("a")
    srv.faults.add(action="latency", latency=0.4, count=1, verbs=["get"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await get_a(cluster)
    assert loop.time() - started >= 0.4
    started = loop.time()
    await get_a(cluster)
    assert loop.time() - started < 0.4


def test_share_is_drawn_per_request_and_duration_bounds_a_fault() -> None:
    now = [0.0]
    faults = FaultInjector(clock=lambda: now[0], seed=7)
    faults.add(action="error", share=0.25, duration=10)
    hits = sum(
        faults.pick("error", "get", "services.serving.knative.dev", "default") is not None for _ in range(400)
    )
    assert 60 <= hits <= 140
    now[0] = 10.5
    assert faults.pick("error", "get", "services.serving.knative.dev", "default") is None
    assert faults.active() == []


def test_unbounded_or_invalid_faults_are_refused() -> None:
    faults = FaultInjector()
    for bad in (
        {"action": "error"},
        {"action": "error", "code": 418, "count": 1},
        {"action": "explode", "count": 1},
        {"action": "error", "count": 1, "share": 0},
        {"action": "error", "count": 1, "verbs": ["fly"]},
        {"action": "error", "count": 1, "colour": "red"},
    ):
        with pytest.raises(ValueError):
            faults.add(**bad)


async def test_dropped_watch_is_resumed_by_the_client(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    ns = cluster.namespace
    await cluster.create_ksvc("a")
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    async with w:
        # No timeout_seconds: kubernetes-asyncio reconnects from the last resourceVersion it saw.
        async for event in w.stream(cluster.custom.list_namespaced_custom_object, G, V, ns, P):
            seen.append((event["type"], event["raw_object"]["metadata"]["name"]))
            if len(seen) == 1:
                assert len(srv.streams.open) == 1
                fault = srv.faults.add(action="drop-watch", count=1)
                assert fault.injected == 1
                await asyncio.sleep(0.1)
                await cluster.create_ksvc("b")
            if len(seen) == 2:
                break
    assert seen == [("ADDED", "a"), ("ADDED", "b")], "no event lost or repeated across the reconnect"


async def test_drop_watch_after_a_delay_for_new_streams(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    srv.faults.add(action="drop-watch", after=0.3, count=1)
    url = f"{srv.url}/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}?watch=1&timeoutSeconds=30"
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert [line async for line in resp.content] == []
    assert 0.3 <= loop.time() - started < 5


async def test_expire_watch_fault(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    await cluster.create_ksvc("a")
    srv.faults.add(action="expire-watch", count=1)
    w = watch.Watch()
    with pytest.raises(ApiException) as err:
        async with w:
            async for _ in w.stream(
                cluster.custom.list_namespaced_custom_object, G, V, cluster.namespace, P, timeout_seconds=5
            ):
                pass
    assert err.value.status == 410


async def test_faults_endpoint(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    await cluster.create_ksvc("a")
    base = f"{srv.url}/_sandbox/faults"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            base, json={"action": "error", "code": 503, "count": 5, "verbs": ["get"]}
        ) as resp:
            assert resp.status == 201
            fault = await resp.json()
        async with session.get(base) as resp:
            assert [f["id"] for f in (await resp.json())["faults"]] == [fault["id"]]
        raw = await cluster.raw("GET", f"/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}/a")
        assert (raw.status, raw.body["reason"]) == (503, "ServiceUnavailable")
        async with session.post(base, json={"action": "error"}) as resp:
            assert resp.status == 400 and "bounded" in (await resp.json())["message"]
        async with session.delete(f"{base}/{fault['id']}") as resp:
            assert resp.status == 200
        async with session.delete(f"{base}/{fault['id']}") as resp:
            assert resp.status == 404
    assert (await get_a(cluster))["metadata"]["name"] == "a"
