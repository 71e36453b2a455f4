"""Unit tests of MemoryStore: the API server semantics without HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rollout_lab.sandbox.apiserver import MemoryStore
from rollout_lab.sandbox.apiserver.kinds import CONFIGMAPS, KSERVICES, NAMESPACES
from rollout_lab.sandbox.store_api import (
    Admission,
    ApiError,
    Obj,
    ObjectStore,
    Operation,
    ResourceType,
    WatchEvent,
)


def ksvc(name: str, image: str = "img:1", **labels: str) -> Obj:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": dict(labels)},
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}},
    }


def test_memory_store_implements_the_seam() -> None:
    store: ObjectStore = MemoryStore()  # checked by mypy: MemoryStore satisfies the ObjectStore protocol
    hook: Admission = Defaulter()
    assert store.list(KSERVICES) == ([], store.list(KSERVICES)[1])
    assert hook.admit(KSERVICES, "CREATE", ksvc("a"), None)["metadata"]["annotations"] == {
        "defaulted": "true"
    }


def test_create_fills_system_fields_and_counts_versions() -> None:
    store = MemoryStore(clock=lambda: 1_700_000_000.0)
    before = int(store.resource_version)
    a = store.create(KSERVICES, ksvc("a"))
    b = store.create(KSERVICES, ksvc("b"))
    meta = a["metadata"]
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert len(meta["uid"]) == 36 and meta["uid"] != b["metadata"]["uid"]
    assert int(meta["resourceVersion"]) == before + 1
    assert int(b["metadata"]["resourceVersion"]) == before + 2
    assert store.resource_version == b["metadata"]["resourceVersion"]
    assert isinstance(meta["resourceVersion"], str)


def test_create_errors() -> None:
    store = MemoryStore()
    store.create(KSERVICES, ksvc("a"))
    with pytest.raises(ApiError) as exists:
        store.create(KSERVICES, ksvc("a"))
    assert (exists.value.code, exists.value.reason) == (409, "AlreadyExists")
    assert exists.value.message == 'services.serving.knative.dev "a" already exists'
    assert exists.value.details == {"name": "a", "group": "serving.knative.dev", "kind": "services"}
    with pytest.raises(ApiError) as bad_name:
        store.create(KSERVICES, ksvc("Not_Valid"))
    assert bad_name.value.code == 422
    assert bad_name.value.details["causes"][0]["field"] == "metadata.name"
    missing_ns = ksvc("x")
    missing_ns["metadata"]["namespace"] = "nowhere"
    with pytest.raises(ApiError) as no_ns:
        store.create(KSERVICES, missing_ns)
    assert (no_ns.value.code, no_ns.value.message) == (404, 'namespaces "nowhere" not found')
    with_rv = ksvc("y")
    with_rv["metadata"]["resourceVersion"] = "5"
    with pytest.raises(ApiError) as rv_set:
        store.create(KSERVICES, with_rv)
    assert rv_set.value.code == 500
    with pytest.raises(ApiError) as no_name:
        store.create(CONFIGMAPS, {"metadata": {"namespace": "default"}})
    assert no_name.value.code == 422
    assert no_name.value.details["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiError) as wrong_kind:
        store.create(CONFIGMAPS, {"kind": "Secret", "metadata": {"name": "s", "namespace": "default"}})
    assert wrong_kind.value.code == 400


def test_generate_name() -> None:
    store = MemoryStore()
    objs = [
        store.create(CONFIGMAPS, {"metadata": {"generateName": "cm-", "namespace": "default"}})
        for _ in range(20)
    ]
    names = {o["metadata"]["name"] for o in objs}
    assert len(names) == 20
    assert all(n.startswith("cm-") and len(n) == 8 for n in names)


def test_generation_bumps_only_on_spec_changes() -> None:
    store = MemoryStore()
    svc = store.create(KSERVICES, ksvc("a"))
    svc["metadata"]["labels"] = {"team": "x"}
    svc = store.update(KSERVICES, svc)
    assert svc["metadata"]["generation"] == 1
    svc["status"] = {"observedGeneration": 1}
    svc = store.update(KSERVICES, svc)
    assert svc["metadata"]["generation"] == 1
    assert "status" not in svc, "the main endpoint ignores status"
    svc["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    svc = store.update(KSERVICES, svc)
    assert svc["metadata"]["generation"] == 2
    svc["status"] = {"observedGeneration": 2}
    svc["spec"]["template"]["spec"]["containers"][0]["image"] = "img:3"
    svc = store.update(KSERVICES, svc, subresource="status")
    assert svc["metadata"]["generation"] == 2, "/status ignores spec and never bumps generation"
    assert svc["status"] == {"observedGeneration": 2}
    assert svc["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"


def test_configmaps_have_no_generation_and_no_status_subresource() -> None:
    store = MemoryStore()
    cm = store.create(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}})
    assert "generation" not in cm["metadata"]
    cm["data"] = {"a": "2"}
    assert store.update(CONFIGMAPS, cm)["data"] == {"a": "2"}


def test_create_drops_status_of_resources_with_status_subresource() -> None:
    store = MemoryStore()
    obj = ksvc("a")
    obj["status"] = {"url": "http://x"}
    assert "status" not in store.create(KSERVICES, obj)


def test_update_conflicts_and_not_found() -> None:
    store = MemoryStore()
    first = store.create(KSERVICES, ksvc("a"))
    second = dict(first, metadata=dict(first["metadata"], labels={"v": "2"}))
    store.update(KSERVICES, second)
    stale = dict(first, metadata=dict(first["metadata"], labels={"v": "3"}))
    with pytest.raises(ApiError) as err:
        store.update(KSERVICES, stale)
    assert (err.value.code, err.value.reason) == (409, "Conflict")
    assert "the object has been modified" in err.value.message
    with pytest.raises(ApiError) as missing:
        store.update(KSERVICES, ksvc("nope"))
    assert (missing.value.code, missing.value.reason) == (404, "NotFound")
    unconditional = ksvc("a", team="y")
    with pytest.raises(ApiError) as needs_rv:
        store.update(KSERVICES, unconditional, require_resource_version=True)
    assert needs_rv.value.code == 422
    assert store.update(KSERVICES, unconditional)["metadata"]["labels"] == {"team": "y"}


def test_noop_update_writes_nothing() -> None:
    store = MemoryStore()
    svc = store.create(KSERVICES, ksvc("a"))
    again = store.update(KSERVICES, svc)
    assert again["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]


def test_list_with_selectors_orders_by_namespace_and_name() -> None:
    store = MemoryStore()
    store.create(NAMESPACES, {"metadata": {"name": "other"}})
    for name, team in (("c", "a"), ("a", "b"), ("b", "a")):
        store.create(KSERVICES, ksvc(name, team=team))
    other = ksvc("z", team="a")
    other["metadata"]["namespace"] = "other"
    store.create(KSERVICES, other)
    items, rv = store.list(KSERVICES)
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c", "z"]
    assert rv == store.resource_version
    items, _ = store.list(KSERVICES, "default", "team=a")
    assert [i["metadata"]["name"] for i in items] == ["b", "c"]
    items, _ = store.list(KSERVICES, None, "team in (a),team!=b", field_selector="metadata.namespace=other")
    assert [i["metadata"]["name"] for i in items] == ["z"]
    with pytest.raises(ApiError) as bad:
        store.list(KSERVICES, None, field_selector="spec.foo=1")
    assert bad.value.code == 400


def test_finalizers_keep_object_until_removed() -> None:
    store = MemoryStore()
    obj = ksvc("a")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    store.create(KSERVICES, obj)
    pending = store.delete(KSERVICES, "default", "a")
    assert pending is not None
    assert pending["metadata"]["deletionTimestamp"]
    assert pending["metadata"]["generation"] == 2
    again = store.delete(KSERVICES, "default", "a")
    assert (
        again is not None and again["metadata"]["resourceVersion"] == pending["metadata"]["resourceVersion"]
    )
    pending["metadata"]["finalizers"].append("example.com/more")
    with pytest.raises(ApiError) as err:
        store.update(KSERVICES, pending)
    assert err.value.code == 422
    pending["metadata"]["finalizers"] = []
    store.update(KSERVICES, pending)
    assert store.get(KSERVICES, "default", "a") is None


def test_delete_preconditions() -> None:
    store = MemoryStore()
    svc = store.create(KSERVICES, ksvc("a"))
    with pytest.raises(ApiError) as err:
        store.delete(KSERVICES, "default", "a", uid="other")
    assert err.value.code == 409
    with pytest.raises(ApiError) as err2:
        store.delete(KSERVICES, "default", "a", resource_version="1")
    assert err2.value.code == 409
    assert store.delete(KSERVICES, "default", "a", uid=svc["metadata"]["uid"]) is None
    with pytest.raises(ApiError) as gone:
        store.delete(KSERVICES, "default", "a")
    assert gone.value.code == 404


def owned(name: str, owner: Obj) -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ],
        }
    }


def test_garbage_collection_background_foreground_orphan() -> None:
    store = MemoryStore()
    for policy, expect_dependent in (("Background", False), ("Foreground", False), ("Orphan", True)):
        owner = store.create(KSERVICES, ksvc("owner"))
        store.create(CONFIGMAPS, owned("dep", owner))
        assert store.delete(KSERVICES, "default", "owner", propagation=policy) is None
        dep = store.get(CONFIGMAPS, "default", "dep")
        assert (dep is not None) == expect_dependent, policy
        if dep is not None:
            assert "ownerReferences" not in dep["metadata"]
            store.delete(CONFIGMAPS, "default", "dep")


def test_foreground_waits_for_dependents_with_finalizers() -> None:
    store = MemoryStore()
    owner = store.create(KSERVICES, ksvc("owner"))
    dep = owned("dep", owner)
    dep["metadata"]["finalizers"] = ["example.com/hold"]
    store.create(CONFIGMAPS, dep)
    left = store.delete(KSERVICES, "default", "owner", propagation="Foreground")
    assert left is not None and left["metadata"]["finalizers"] == ["foregroundDeletion"]
    held = store.get(CONFIGMAPS, "default", "dep")
    assert held is not None and held["metadata"]["deletionTimestamp"]
    held["metadata"]["finalizers"] = []
    store.update(CONFIGMAPS, held)
    assert store.get(KSERVICES, "default", "owner") is None


def test_namespace_deletion_removes_contents() -> None:
    store = MemoryStore()
    store.create(NAMESPACES, {"metadata": {"name": "team"}})
    ns = store.get(NAMESPACES, None, "team")
    assert ns is not None and ns["status"] == {"phase": "Active"}
    store.create(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "team"}})
    hold = {"metadata": {"name": "h", "namespace": "team", "finalizers": ["example.com/x"]}}
    store.create(CONFIGMAPS, hold)
    left = store.delete(NAMESPACES, None, "team")
    assert left is not None and left["status"]["phase"] == "Terminating"
    assert store.get(CONFIGMAPS, "team", "c") is None
    with pytest.raises(ApiError) as err:
        store.create(CONFIGMAPS, {"metadata": {"name": "new", "namespace": "team"}})
    assert err.value.code == 403
    held = store.get(CONFIGMAPS, "team", "h")
    assert held is not None
    held["metadata"]["finalizers"] = []
    store.update(CONFIGMAPS, held)
    assert store.get(NAMESPACES, None, "team") is None


class Defaulter:
    def __init__(self) -> None:
        self.calls: list[Operation] = []

    def admit(self, rt: ResourceType, operation: Operation, obj: Obj, old: Obj | None) -> Obj:
        self.calls.append(operation)
        if obj["metadata"].get("labels", {}).get("reject") == "yes":
            raise ApiError(422, "Invalid", "rejected by admission")
        obj["metadata"].setdefault("annotations", {})["defaulted"] = "true"
        return obj


def test_admission_defaults_and_rejects() -> None:
    store = MemoryStore()
    hook = Defaulter()
    store.register_admission(KSERVICES, hook)
    svc = store.create(KSERVICES, ksvc("a"))
    assert svc["metadata"]["annotations"] == {"defaulted": "true"}
    with pytest.raises(ApiError):
        store.create(KSERVICES, ksvc("b", reject="yes"))
    assert store.get(KSERVICES, "default", "b") is None
    # a status write reaches no hook (Knative's webhooks elide their checks on status updates), and it
    # changes only the status, whatever else the request carries
    svc["status"] = {"observedGeneration": 1}
    svc["metadata"]["labels"] = {"reject": "yes"}
    written = store.update(KSERVICES, svc, subresource="status")
    assert written["status"] == {"observedGeneration": 1} and written["metadata"]["labels"] == {}
    store.delete(KSERVICES, "default", "a")
    assert hook.calls == ["CREATE", "CREATE", "DELETE"]


async def collect(it: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    out = []
    async for ev in it:
        out.append(ev)
        if len(out) == n:
            break
    return out


async def test_watch_initial_state_then_live_events() -> None:
    store = MemoryStore()
    store.create(KSERVICES, ksvc("a"))
    w = store.watch(KSERVICES, "default")
    svc = store.create(KSERVICES, ksvc("b"))
    store.delete(KSERVICES, "default", "b")
    events = await asyncio.wait_for(collect(w, 3), 2)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("DELETED", "b"),
    ]
    assert int(events[2].object["metadata"]["resourceVersion"]) > int(svc["metadata"]["resourceVersion"])


async def test_watch_resumes_from_resource_version() -> None:
    store = MemoryStore()
    a = store.create(KSERVICES, ksvc("a"))
    store.create(KSERVICES, ksvc("b"))
    w = store.watch(KSERVICES, None, a["metadata"]["resourceVersion"])
    events = await asyncio.wait_for(collect(w, 1), 2)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "b")]


async def test_watch_selector_turns_changes_into_added_and_deleted() -> None:
    store = MemoryStore()
    svc = store.create(KSERVICES, ksvc("a", team="x"))
    w = store.watch(KSERVICES, "default", svc["metadata"]["resourceVersion"], label_selector="team=y")
    svc["metadata"]["labels"] = {"team": "y"}
    svc = store.update(KSERVICES, svc)
    svc["metadata"]["labels"] = {"team": "y", "more": "1"}
    svc = store.update(KSERVICES, svc)
    svc["metadata"]["labels"] = {"team": "z"}
    store.update(KSERVICES, svc)
    events = await asyncio.wait_for(collect(w, 3), 2)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]


async def test_watch_by_name_sees_only_that_object() -> None:
    store = MemoryStore()
    rv = store.resource_version
    w = store.watch(KSERVICES, "default", rv, field_selector="metadata.name=b")
    store.create(KSERVICES, ksvc("a"))
    store.create(KSERVICES, ksvc("b"))
    events = await asyncio.wait_for(collect(w, 1), 2)
    assert events[0].object["metadata"]["name"] == "b"
    assert [w.name for w in store.watchers(KSERVICES)] == ["b"]


async def test_watch_too_old_is_expired() -> None:
    store = MemoryStore(log_capacity=3)
    first = store.create(CONFIGMAPS, {"metadata": {"name": "c0", "namespace": "default"}})
    for i in range(1, 6):
        store.create(CONFIGMAPS, {"metadata": {"name": f"c{i}", "namespace": "default"}})
    with pytest.raises(ApiError) as err:
        await store.watch(CONFIGMAPS, None, first["metadata"]["resourceVersion"]).__anext__()
    assert (err.value.code, err.value.reason) == (410, "Expired")
    recent = str(int(store.resource_version) - 2)
    events = await asyncio.wait_for(collect(store.watch(CONFIGMAPS, None, recent), 2), 2)
    assert [e.object["metadata"]["name"] for e in events] == ["c4", "c5"]
    store.expire_events()
    with pytest.raises(ApiError) as err2:
        await store.watch(CONFIGMAPS, None, recent).__anext__()
    assert err2.value.code == 410


async def test_watch_objects_are_copies() -> None:
    store = MemoryStore()
    w = store.watch(KSERVICES, "default", store.resource_version)
    store.create(KSERVICES, ksvc("a"))
    (ev,) = await asyncio.wait_for(collect(w, 1), 2)
    ev.object["metadata"]["name"] = "mutated"
    stored = store.get(KSERVICES, "default", "a")
    assert stored is not None and stored["metadata"]["name"] == "a"


async def test_replay_from_compacted_log_entries() -> None:
    store = MemoryStore()
    start = store.resource_version
    svc = store.create(KSERVICES, ksvc("a", team="x"))
    for i in range(300):  # more than the log keeps as objects: the oldest entries keep only JSON
        svc["metadata"]["labels"] = {"team": "y" if i % 2 == 0 else "x", "i": str(i)}
        svc = store.update(KSERVICES, svc)
    events = await asyncio.wait_for(
        collect(store.watch(KSERVICES, None, start, label_selector="team=y"), 4), 2
    )
    assert [e.type for e in events] == ["ADDED", "DELETED", "ADDED", "DELETED"]
    assert [e.object["metadata"]["labels"]["i"] for e in events] == ["0", "1", "2", "3"]


async def test_versions_in_the_watch_log_keep_their_own_spec_and_status() -> None:
    """Status writes share the unchanged spec with the version before (stored versions are read-only);
    a later spec change must still leave every earlier version as it was."""
    store = MemoryStore()
    created = store.create(KSERVICES, ksvc("a", image="img:1"))
    for generation in (1, 2):
        current = store.get(KSERVICES, "default", "a")
        assert current is not None
        current["status"] = {"observedGeneration": generation}
        store.update(KSERVICES, current, subresource="status")
    current = store.get(KSERVICES, "default", "a")
    assert current is not None
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    store.update(KSERVICES, current)
    w = store.watch(KSERVICES, "default", created["metadata"]["resourceVersion"])
    events = await asyncio.wait_for(collect(w, 3), 2)
    images = [e.object["spec"]["template"]["spec"]["containers"][0]["image"] for e in events]
    assert images == ["img:1", "img:1", "img:2"]
    assert [e.object.get("status") for e in events] == [
        {"observedGeneration": 1},
        {"observedGeneration": 2},
        {"observedGeneration": 2},
    ]
