"""Conformance: PATCH in each of its types (merge, JSON, strategic, apply)."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.apiserver.cluster_fixture import KSVC, Cluster, status_of

G, V, P = KSVC
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


async def test_merge_patch(cluster: Cluster) -> None:
    await cluster.create_ksvc("a", keep="1", drop="1")
    patched = await cluster.patch_ksvc("a", {"metadata": {"labels": {"drop": None, "new": "2"}}}, MERGE)
    assert patched["metadata"]["labels"] == {"keep": "1", "new": "2"}
    assert patched["metadata"]["generation"] == 1
    patched = await cluster.patch_ksvc(
        "a", {"spec": {"traffic": [{"latestRevision": True, "percent": 100}]}}, MERGE
    )
    assert patched["metadata"]["generation"] == 2
    assert patched["spec"]["template"]["spec"]["containers"][0]["image"] == "example.com/app:1"


async def test_merge_patch_resource_version_is_a_precondition(cluster: Cluster) -> None:
    svc = await cluster.create_ksvc("a")
    rv = svc["metadata"]["resourceVersion"]
    ok = await cluster.patch_ksvc("a", {"metadata": {"resourceVersion": rv, "labels": {"x": "1"}}}, MERGE)
    assert ok["metadata"]["resourceVersion"] != rv
    with pytest.raises(ApiException) as err:
        await cluster.patch_ksvc("a", {"metadata": {"resourceVersion": rv, "labels": {"x": "2"}}}, MERGE)
    body = status_of(err.value)
    assert (body["code"], body["reason"]) == (409, "Conflict")


async def test_json_patch_and_failed_test(cluster: Cluster) -> None:
    svc = await cluster.create_ksvc("a")
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": svc["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/metadata/labels/app~1tier", "value": "web"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "example.com/app:2"},
    ]
    patched = await cluster.patch_ksvc("a", ops, JSON_PATCH)
    assert patched["metadata"]["labels"]["app/tier"] == "web"
    assert patched["metadata"]["generation"] == 2
    stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": svc["metadata"]["resourceVersion"]}]
    with pytest.raises(ApiException) as err:
        await cluster.patch_ksvc("a", stale, JSON_PATCH)
    assert status_of(err.value)["code"] == 422
    missing = [{"op": "remove", "path": "/spec/nothing"}]
    with pytest.raises(ApiException) as err2:
        await cluster.patch_ksvc("a", missing, JSON_PATCH)
    assert status_of(err2.value)["code"] == 422


async def test_strategic_merge_is_415_on_custom_resources(cluster: Cluster) -> None:
    await cluster.create_ksvc("a")
    with pytest.raises(ApiException) as err:
        await cluster.patch_ksvc("a", {"metadata": {"labels": {"x": "1"}}}, STRATEGIC)
    body = status_of(err.value)
    assert (body["code"], body["reason"]) == (415, "UnsupportedMediaType")


async def test_strategic_merge_on_built_in_kinds(cluster: Cluster) -> None:
    ns = cluster.namespace
    cm = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="c", finalizers=["example.com/a"]), data={"a": "1"}
    )
    await cluster.core.create_namespaced_config_map(ns, cm)
    patched = await cluster.core.patch_namespaced_config_map(
        "c", ns, {"metadata": {"finalizers": ["example.com/b"]}, "data": {"b": "2"}}
    )
    assert patched.data == {"a": "1", "b": "2"}
    assert patched.metadata.finalizers == ["example.com/a", "example.com/b"], "finalizers merge as a set"
    patched = await cluster.core.patch_namespaced_config_map(
        "c", ns, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/b"]}}
    )
    assert not patched.metadata.finalizers


async def test_apply_patch_creates_then_updates(cluster: Cluster) -> None:
    ns = cluster.namespace
    path = f"/apis/{G}/{V}/namespaces/{ns}/{P}/applied"
    body = cluster.ksvc("applied")
    missing_manager = await cluster.raw("PATCH", path, body=body, content_type=APPLY)
    assert missing_manager.status == 422
    created = await cluster.raw(
        "PATCH", path, body=body, content_type=APPLY, query=[("fieldManager", "test")]
    )
    assert created.status == 201
    body["metadata"]["labels"] = {"applied": "yes"}
    updated = await cluster.raw(
        "PATCH", path, body=body, content_type=APPLY, query=[("fieldManager", "test")]
    )
    assert updated.status == 200
    assert updated.body["metadata"]["labels"] == {"applied": "yes"}


async def test_patch_of_status_subresource_changes_only_status(cluster: Cluster) -> None:
    await cluster.create_ksvc("a")
    patched = await cluster.patch_ksvc(
        "a", {"status": {"observedGeneration": 1}, "metadata": {"labels": {"x": "1"}}}, MERGE, status=True
    )
    assert patched["status"] == {"observedGeneration": 1}
    assert not patched["metadata"].get("labels")


async def test_unknown_patch_type_is_415(cluster: Cluster) -> None:
    srv = cluster.require_sandbox()  # the typed client refuses to send an unknown content type
    await cluster.create_ksvc("a")
    url = f"{srv.url}/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}/a"
    async with (
        aiohttp.ClientSession() as session,
        session.patch(url, data=b"{}", headers={"Content-Type": "text/plain"}) as resp,
    ):
        body = await resp.json()
    assert (resp.status, body["reason"]) == (415, "UnsupportedMediaType")
