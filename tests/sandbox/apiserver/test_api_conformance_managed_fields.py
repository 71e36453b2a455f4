"""Conformance: metadata.managedFields — who owns which field, recorded by the server on every create, update
and patch (operation Update), server-side apply (operation Apply, conflicts, force, pruning) and `/status`
writes (subresource status), in the FieldsV1 encoding."""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.apiserver.cluster_fixture import KSVC, Cluster, status_of
from tests.sandbox.apiserver.test_api_conformance_crd import create, widget, widgets

__all__ = ["widgets"]  # the fixture, used by name

MERGE = "application/merge-patch+json"
APPLY = "application/apply-patch+yaml"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def entries(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """managedFields by manager (each test's managers are distinct names)."""
    return {e["manager"]: e for e in obj["metadata"].get("managedFields") or []}


def fields(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    found: dict[str, Any] = entries(obj)[manager]["fieldsV1"]
    return found


async def test_create_records_the_manager_and_the_fields_it_set(cluster: Cluster) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm", labels={"app": "x"}), data={"a": "1"})
    created = await cluster.core.create_namespaced_config_map(cluster.namespace, body, field_manager="alice")
    raw = created.to_dict()["metadata"]["managed_fields"]
    assert len(raw) == 1
    (entry,) = raw
    assert (entry["manager"], entry["operation"], entry["api_version"]) == ("alice", "Update", "v1")
    assert entry["fields_type"] == "FieldsV1" and entry.get("subresource") is None
    assert RFC3339.match(entry["time"].strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert entry["fields_v1"] == {
        "f:data": {".": {}, "f:a": {}},
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    }


async def test_another_manager_takes_the_fields_it_changes(cluster: Cluster) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "1", "b": "1"})
    await cluster.core.create_namespaced_config_map(cluster.namespace, body, field_manager="alice")
    await cluster.core.patch_namespaced_config_map(
        "cm", cluster.namespace, {"data": {"b": "2", "c": "3"}}, field_manager="bob"
    )
    raw = await cluster.raw("GET", f"/api/v1/namespaces/{cluster.namespace}/configmaps/cm")
    assert fields(raw.body, "alice") == {"f:data": {".": {}, "f:a": {}}}
    assert fields(raw.body, "bob") == {"f:data": {"f:b": {}, "f:c": {}}}
    # a write that changes nothing of its own takes nothing: no entry for carol
    await cluster.core.patch_namespaced_config_map(
        "cm", cluster.namespace, {"data": {"a": "1"}}, field_manager="carol"
    )
    raw = await cluster.raw("GET", f"/api/v1/namespaces/{cluster.namespace}/configmaps/cm")
    assert set(entries(raw.body)) == {"alice", "bob"}
    # removing a field removes it from whoever owned it
    await cluster.core.patch_namespaced_config_map(
        "cm", cluster.namespace, {"data": {"c": None}}, field_manager="carol"
    )
    raw = await cluster.raw("GET", f"/api/v1/namespaces/{cluster.namespace}/configmaps/cm")
    assert fields(raw.body, "bob") == {"f:data": {"f:b": {}}}
    assert "carol" not in entries(raw.body)


async def test_default_manager_is_the_user_agent_up_to_the_first_slash(cluster: Cluster) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ua"), data={"a": "1"})
    default_agent = str(cluster.api.user_agent)
    await cluster.core.create_namespaced_config_map(cluster.namespace, body)
    try:
        cluster.api.user_agent = "argocd-application-controller/v2.9.3 (linux/amd64)"
        await cluster.core.patch_namespaced_config_map("ua", cluster.namespace, {"data": {"b": "2"}})
    finally:
        cluster.api.user_agent = default_agent
    raw = await cluster.raw("GET", f"/api/v1/namespaces/{cluster.namespace}/configmaps/ua")
    assert default_agent.startswith("OpenAPI-Generator/")  # what kubernetes-asyncio sends
    assert set(entries(raw.body)) == {"OpenAPI-Generator", "argocd-application-controller"}
    assert fields(raw.body, "argocd-application-controller") == {"f:data": {"f:b": {}}}


async def test_field_manager_longer_than_128_bytes_is_invalid(cluster: Cluster) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="long"))
    with pytest.raises(ApiException) as err:
        await cluster.core.create_namespaced_config_map(cluster.namespace, body, field_manager="m" * 129)
    status = status_of(err.value)
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert "fieldManager: Too long: may not be more than 128 bytes" in status["message"]


async def test_traffic_is_one_atomic_field_and_moves_to_who_rewrote_it(cluster: Cluster) -> None:
    body = cluster.ksvc("hello")
    body["spec"]["traffic"] = [{"latestRevision": True, "percent": 100}]
    await cluster.custom.create_namespaced_custom_object(
        *KSVC[:2], cluster.namespace, KSVC[2], body, field_manager="knative-rollout"
    )
    path = f"/apis/{KSVC[0]}/{KSVC[1]}/namespaces/{cluster.namespace}/{KSVC[2]}/hello"
    patch = {"spec": {"traffic": [{"latestRevision": True, "percent": 100, "tag": "current"}]}}
    patched = await cluster.raw(
        "PATCH", path, body=patch, content_type=MERGE, query=[("fieldManager", "argocd-controller")]
    )
    assert patched.status == 200
    owners = [e["manager"] for e in patched.body["metadata"]["managedFields"] if "f:traffic" in _spec(e)]
    assert owners == ["argocd-controller"]
    # spec.traffic (a list without x-kubernetes-list-type) is atomic: no per-entry paths
    assert fields(patched.body, "argocd-controller")["f:spec"] == {"f:traffic": {}}
    assert "f:template" in _spec(entries(patched.body)["knative-rollout"])


def _spec(entry: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = entry["fieldsV1"].get("f:spec", {})
    return spec


async def test_status_writes_are_recorded_apart(cluster: Cluster, widgets: str) -> None:
    created = await cluster.custom.create_namespaced_custom_object(
        widgets,
        "v1",
        cluster.namespace,
        "widgets",
        widget("w", widgets, size=3, tags=["a"]),
        field_manager="alice",
    )
    assert fields(created, "alice") == {"f:spec": {".": {}, "f:mode": {}, "f:size": {}, "f:tags": {}}}
    created["status"] = {"phase": "Ready"}
    updated = await cluster.custom.replace_namespaced_custom_object_status(
        widgets, "v1", cluster.namespace, "widgets", "w", created, field_manager="operator"
    )
    status_entry = entries(updated)["operator"]
    assert status_entry["subresource"] == "status" and status_entry["operation"] == "Update"
    assert status_entry["fieldsV1"] == {"f:status": {".": {}, "f:phase": {}}}
    assert fields(updated, "alice") == fields(created, "alice")
    # the main endpoint ignores status: a PUT that only changes it writes nothing and owns nothing
    updated["status"] = {"phase": "Gone"}
    same = await cluster.custom.replace_namespaced_custom_object(
        widgets, "v1", cluster.namespace, "widgets", "w", updated, field_manager="carol"
    )
    assert same["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]
    assert "carol" not in entries(same)


async def test_server_side_apply_conflicts_force_and_prune(cluster: Cluster, widgets: str) -> None:
    await create(cluster, widgets, widget("w", widgets, size=3))
    path = f"/apis/{widgets}/v1/namespaces/{cluster.namespace}/widgets/w"

    async def apply(manager: str, spec: dict[str, Any], force: bool = False) -> Any:
        query = [("fieldManager", manager)] + ([("force", "true")] if force else [])
        body = {"apiVersion": f"{widgets}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}
        return await cluster.raw("PATCH", path, body=body, content_type=APPLY, query=query)

    # the creator (kubernetes-asyncio's default manager) owns size; dave applies the same size and a color
    first = await apply("dave", {"size": 3, "color": "red"})
    assert first.status == 200, first.body
    dave = entries(first.body)["dave"]
    assert (dave["operation"], dave["apiVersion"]) == ("Apply", f"{widgets}/v1")
    assert dave["fieldsV1"] == {"f:spec": {"f:color": {}, "f:size": {}}}
    assert "f:size" in fields(first.body, "OpenAPI-Generator")["f:spec"]  # same value: shared ownership

    refused = await apply("erin", {"size": 5})
    assert (refused.status, refused.body["reason"]) == (409, "Conflict")
    assert refused.body["message"].startswith("Apply failed with 2 conflicts: conflicts with ")
    causes = {(c["type"], c["message"], c["field"]) for c in refused.body["details"]["causes"]}
    assert causes == {
        ("FieldManagerConflict", f'conflict with "OpenAPI-Generator" using {widgets}/v1', ".spec.size"),
        ("FieldManagerConflict", 'conflict with "dave"', ".spec.size"),
    }

    forced = await apply("erin", {"size": 5}, force=True)
    assert forced.status == 200 and forced.body["spec"]["size"] == 5
    assert fields(forced.body, "erin") == {"f:spec": {"f:size": {}}}
    assert fields(forced.body, "dave") == {"f:spec": {"f:color": {}}}
    assert "f:size" not in fields(forced.body, "OpenAPI-Generator")["f:spec"]

    # dave stops applying the color he alone owned: the server removes it
    pruned = await apply("dave", {})
    assert pruned.status == 200
    assert "color" not in pruned.body["spec"] and pruned.body["spec"]["size"] == 5
