"""Informers through kubernetes-asyncio: against the sandbox API server (list, watch, bookmarks, 410 and
dropped streams) and against a server that accepts a watch and then goes silent (a half-open connection)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from kubernetes_asyncio.client import ApiClient, Configuration

from rollout.kube.client import KubeClient
from rollout.kube.informer import Informer, InformerSettings
from rollout.kube.resources import REVISIONS, SERVICES
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.apiserver.server import SandboxApiServer
from tests.integration.harness import eventually
from tests.local_http import serving

FAST = InformerSettings(watch_timeout=5, read_timeout=2.0, resync=0, backoff_base=0.02, backoff_cap=0.2)


def service_body(name: str, label: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": {"team": label}},
        "spec": {"template": {"spec": {"containers": [{"image": "img"}]}}},
    }


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[Informer]:
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), timeout=5)
        yield informer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def client_for(url: str) -> KubeClient:
    config = Configuration(host=url)
    return KubeClient(ApiClient(config))


async def test_list_then_watch_keeps_the_cache_and_tells_the_handler() -> None:
    async with SandboxApiServer() as api:
        store = api.store
        store.create(kinds.KSERVICES, service_body("one"))
        seen: list[tuple[str, str]] = []
        client = client_for(api.url)
        informer = Informer(
            client,
            SERVICES,
            ["default"],
            label_selector="team=a",
            settings=FAST,
            handler=lambda kind, old, new: seen.append((kind, new["metadata"]["name"])),
        )
        informer.add_index("team", lambda o: [o["metadata"]["labels"].get("team", "")])
        try:
            async with running(informer):
                assert ("ADDED", "one") in seen and informer.get("default", "one") is not None
                store.create(kinds.KSERVICES, service_body("two"))
                store.create(kinds.KSERVICES, service_body("other", label="b"))
                await eventually(lambda: informer.get("default", "two") is not None, within=3)
                assert informer.get("default", "other") is None  # the label selector holds
                assert sorted(o["metadata"]["name"] for o in informer.by_index("team", "a")) == ["one", "two"]
                store.delete(kinds.KSERVICES, "default", "one")
                await eventually(lambda: informer.get("default", "one") is None, within=3)
                assert ("DELETED", "one") in seen
                assert [o["metadata"]["name"] for o in informer.by_index("team", "a")] == ["two"]
        finally:
            await client.close()


async def test_expired_watch_relists_and_reports_what_changed_meanwhile() -> None:
    async with SandboxApiServer() as api:
        store = api.store
        for name in ("one", "two"):
            store.create(kinds.KSERVICES, service_body(name))
        deleted: list[str] = []
        client = client_for(api.url)
        informer = Informer(
            client,
            SERVICES,
            None,
            settings=FAST,
            handler=lambda kind, old, new: (
                deleted.append(new["metadata"]["name"]) if kind == "DELETED" else None
            ),
        )
        try:
            async with running(informer):
                assert informer.relists == 1
                # the next watches answer 410 Expired, and the open stream is dropped now
                api.faults.add(action="expire-watch", count=1, duration=30)
                api.faults.add(action="drop-watch", count=1, duration=30)
                await eventually(lambda: informer.relists >= 2, within=5)
                store.delete(kinds.KSERVICES, "default", "two")
                store.create(kinds.KSERVICES, service_body("three"))
                await eventually(
                    lambda: sorted(o["metadata"]["name"] for o in informer.items()) == ["one", "three"],
                    within=5,
                )
                assert "two" in deleted
        finally:
            await client.close()


Events = list[dict[str, Any]]


@contextlib.asynccontextmanager
async def half_open_server(first_watch: Events) -> AsyncIterator[tuple[Informer, list[str]]]:
    """A revisions informer against a server that lists at resourceVersion 5 and answers each watch with
    `first_watch`'s events (the first watch only) and then silence, as if the peer vanished without
    closing; with the resourceVersion each watch asked from."""
    asked: list[str] = []
    hold = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "1"):
            items = {"kind": "RevisionList", "apiVersion": "serving.knative.dev/v1", "items": []}
            return web.json_response({**items, "metadata": {"resourceVersion": "5"}})
        asked.append(request.query.get("resourceVersion", ""))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for event in first_watch if len(asked) == 1 else []:
            await response.write(json.dumps(event).encode() + b"\n")
        await hold.wait()
        return response

    app = web.Application()
    app.router.add_get("/apis/serving.knative.dev/v1/revisions", handler)
    async with serving(app) as url:
        client = client_for(url)
        settings = InformerSettings(watch_timeout=300, read_timeout=0.3, resync=0, backoff_base=0.01)
        informer = Informer(client, REVISIONS, None, settings=settings)
        try:
            async with running(informer):
                yield informer, asked
        finally:
            hold.set()
            await client.close()


async def test_a_silent_watch_connection_is_abandoned_after_the_read_timeout() -> None:
    async with half_open_server([]) as (informer, asked):
        await eventually(lambda: len(asked) >= 3, within=5)  # each silent stream is given up and re-opened
        assert informer.relists == 1  # a silent stream is not an expired one: no re-list


async def test_a_silent_watch_resumes_after_the_last_event_it_delivered() -> None:
    # Resuming from the list's resourceVersion would replay the events since, and the cache would go back
    # in time until the replay caught up: a reconcile in between decides on an old object.
    meta = {"name": "r1", "namespace": "default", "resourceVersion": "7"}
    added = {
        "type": "ADDED",
        "object": {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "metadata": meta},
    }
    async with half_open_server([added]) as (informer, asked):
        await eventually(lambda: len(asked) >= 3, within=5)
        assert informer.get("default", "r1") is not None
        assert asked[:3] == ["5", "7", "7"]


async def test_a_cancelled_informer_stops_even_while_events_stream_in() -> None:
    """Shutdown cancels informers while watch lines arrive; a cancellation that lands as a read completes
    must not be swallowed (asyncio.wait_for could on 3.11, leaving a controller that never stopped)."""
    async with SandboxApiServer() as api:
        store = api.store
        client = client_for(api.url)
        writing = True

        store.create(kinds.KSERVICES, service_body("busy"))

        async def writer() -> None:  # one object modified over and over: a steady stream of watch lines
            n = 0
            while writing:
                n += 1
                obj = store.get(kinds.KSERVICES, "default", "busy")
                assert obj is not None
                obj["metadata"]["labels"]["n"] = str(n)
                store.update(kinds.KSERVICES, obj)
                await asyncio.sleep(0)

        churn = asyncio.create_task(writer())
        try:
            for attempt in range(40):
                informer = Informer(client, SERVICES, ["default"], settings=FAST)
                task = asyncio.create_task(informer.run())
                await asyncio.wait_for(informer.wait_synced(), timeout=5)
                await asyncio.sleep(0.001 * (attempt % 7))
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=3)
                assert done, f"attempt {attempt}: the informer ignored its cancellation"
        finally:
            writing = False
            await churn
            await client.close()


async def test_an_informer_keeps_only_the_namespaces_chosen_and_adopts_one_when_asked() -> None:
    async with SandboxApiServer() as api:
        store = api.store
        for ns in ("team-a", "team-b"):
            store.create(
                kinds.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
            for name in ("one", "two"):
                body = service_body(name)
                body["metadata"]["namespace"] = ns
                store.create(kinds.KSERVICES, body)
        seen: list[tuple[str, str]] = []
        client = client_for(api.url)
        informer = Informer(
            client,
            SERVICES,
            settings=FAST,
            handler=lambda k, o, n: seen.append((k, n["metadata"]["namespace"])),
        )
        kept = {"team-a"}
        informer.keep = lambda ns: ns in kept
        informer.add_index("team", lambda o: [o["metadata"]["labels"]["team"]])
        try:
            async with running(informer):
                assert sorted(informer._cache) == [("team-a", "one"), ("team-a", "two")]
                assert {ns for _, ns in seen} == {"team-a"}  # the other namespace's objects are never seen
                kept.add("team-b")  # a shard taken: its events flow in at once ...
                body = service_body("three")
                body["metadata"]["namespace"] = "team-b"
                store.create(kinds.KSERVICES, body)
                await eventually(lambda: informer.get("team-b", "three") is not None, within=3)
                store.delete(kinds.KSERVICES, "team-b", "two")
                await asyncio.sleep(0.2)
                await informer.adopt(lambda ns: ns == "team-b")  # ... and a list fills in what was there
                assert sorted(k for k in informer._cache if k[0] == "team-b") == [
                    ("team-b", "one"),
                    ("team-b", "three"),
                ]
                kept.discard("team-a")  # a shard lost: its objects leave the cache and the indexes
                informer.forget(lambda ns: ns == "team-a")
                assert informer.items("team-a") == [] and len(informer.by_index("team", "a")) == 2
        finally:
            await client.close()
