"""Conformance: WATCH through kubernetes-asyncio's Watch and over raw HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.apiserver.cluster_fixture import KSVC, Cluster

G, V, P = KSVC


async def collect(cluster: Cluster, count: int, seconds: float = 10, **kwargs: Any) -> list[dict[str, Any]]:
    """The first `count` events of a watch on ksvcs in the test namespace."""
    events: list[dict[str, Any]] = []
    w = watch.Watch()
    async with w:
        stream = w.stream(
            cluster.custom.list_namespaced_custom_object,
            G,
            V,
            cluster.namespace,
            P,
            timeout_seconds=seconds,
            **kwargs,
        )
        async for event in stream:
            events.append(event)
            if len(events) >= count:
                break
    return events


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["raw_object"]["metadata"].get("name", "")) for e in events]


async def test_watch_sends_current_state_then_changes(cluster: Cluster) -> None:
    ns = cluster.namespace
    await cluster.create_ksvc("a")
    seen: list[dict[str, Any]] = []
    w = watch.Watch()
    async with w:
        async for event in w.stream(
            cluster.custom.list_namespaced_custom_object, G, V, ns, P, timeout_seconds=10
        ):
            seen.append(event)
            if len(seen) == 1:
                await cluster.create_ksvc("b")
                a = await cluster.custom.get_namespaced_custom_object(G, V, ns, P, "a")
                a["metadata"]["labels"] = {"changed": "yes"}
                await cluster.custom.replace_namespaced_custom_object(G, V, ns, P, "a", a)
                await cluster.custom.delete_namespaced_custom_object(G, V, ns, P, "b")
            if len(seen) == 4:
                break
    assert names(seen) == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    versions = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in seen]
    assert versions == sorted(versions)


async def test_watch_resumes_after_a_resource_version(cluster: Cluster) -> None:
    ns = cluster.namespace
    a = await cluster.create_ksvc("a")
    await cluster.create_ksvc("b")
    a = await cluster.custom.get_namespaced_custom_object(G, V, ns, P, "a")
    a["spec"]["template"]["spec"]["containers"][0]["image"] = "example.com/app:2"
    await cluster.custom.replace_namespaced_custom_object(G, V, ns, P, "a", a)
    events = await collect(cluster, 2, resource_version=a["metadata"]["resourceVersion"])
    assert names(events) == [("ADDED", "b"), ("MODIFIED", "a")]
    assert events[1]["raw_object"]["metadata"]["generation"] == 2


async def test_watch_from_a_compacted_version_is_410_expired(cluster: Cluster) -> None:
    first = await cluster.create_ksvc("a")
    await cluster.create_ksvc("b")
    old = first["metadata"]["resourceVersion"]
    if cluster.sandbox is not None:
        cluster.sandbox.store.expire_events()
    else:
        old = "1"  # a real cluster has compacted its first versions long ago
    with pytest.raises(ApiException) as err:
        await collect(cluster, 1, seconds=5, resource_version=old)
    assert err.value.status == 410
    assert "Expired" in str(err.value.reason)


async def test_watch_bookmarks_carry_only_a_resource_version(cluster: Cluster) -> None:
    await cluster.create_ksvc("a")
    events = await collect(cluster, 2, seconds=5, allow_watch_bookmarks=True)
    assert names(events)[0] == ("ADDED", "a")
    bookmark = events[1]
    assert bookmark["type"] == "BOOKMARK"
    obj = bookmark["raw_object"]
    assert obj["kind"] == "Service" and obj["apiVersion"] == f"{G}/{V}"
    assert set(obj["metadata"]) <= {"resourceVersion", "annotations"}
    assert int(obj["metadata"]["resourceVersion"]) >= int(
        events[0]["raw_object"]["metadata"]["resourceVersion"]
    )


async def test_watch_with_label_selector_sees_objects_enter_and_leave(cluster: Cluster) -> None:
    ns = cluster.namespace
    a = await cluster.create_ksvc("a", team="red")
    start = a["metadata"]["resourceVersion"]
    a["metadata"]["labels"] = {"team": "blue"}
    a = await cluster.custom.replace_namespaced_custom_object(G, V, ns, P, "a", a)
    a["metadata"]["labels"] = {"team": "red"}
    await cluster.custom.replace_namespaced_custom_object(G, V, ns, P, "a", a)
    events = await collect(cluster, 2, resource_version=start, label_selector="team=blue")
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_watch_by_field_selector(cluster: Cluster) -> None:
    await cluster.create_ksvc("a")
    await cluster.create_ksvc("b")
    events = await collect(cluster, 1, field_selector="metadata.name=b")
    assert names(events) == [("ADDED", "b")]


async def _raw_stream(cluster: Cluster, query: str) -> tuple[int, dict[str, str], list[bytes]]:
    """Read a whole watch response line by line (the sandbox: plain HTTP on loopback)."""
    srv = cluster.require_sandbox()
    url = f"{srv.url}/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}?{query}"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        lines = [line async for line in resp.content]
        return resp.status, dict(resp.headers), lines


@pytest.mark.parametrize("flag", ["true", "True", "1"])
async def test_watch_flag_spellings_and_chunked_ndjson(cluster: Cluster, flag: str) -> None:
    await cluster.create_ksvc("a")
    status, headers, lines = await _raw_stream(cluster, f"watch={flag}&timeoutSeconds=1")
    assert status == 200
    assert headers.get("Transfer-Encoding") == "chunked"
    events = [json.loads(line) for line in lines]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]
    assert all(line.endswith(b"\n") for line in lines)


async def test_watch_too_old_is_an_error_event_in_a_200_stream(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()
    first = await cluster.create_ksvc("a")
    await cluster.create_ksvc("b")
    srv.store.expire_events()
    old = first["metadata"]["resourceVersion"]
    status, _, lines = await _raw_stream(cluster, f"watch=1&timeoutSeconds=2&resourceVersion={old}")
    assert status == 200
    (event,) = [json.loads(line) for line in lines]
    assert event["type"] == "ERROR"
    assert event["object"]["kind"] == "Status"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


async def test_watch_send_initial_events_ends_with_annotated_bookmark(cluster: Cluster) -> None:
    await cluster.create_ksvc("a")
    await cluster.create_ksvc("b")
    query = "watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    _, _, lines = await _raw_stream(cluster, query)
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events[:3]] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    bad = await cluster.raw(
        "GET",
        f"/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}",
        query=[("watch", "1"), ("sendInitialEvents", "true")],
    )
    assert (bad.status, bad.body["reason"]) == (422, "Invalid")


async def test_watch_timeout_ends_the_stream(cluster: Cluster) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await collect(cluster, 5, seconds=1)
    assert events == []
    assert 0.8 <= loop.time() - started < 5
