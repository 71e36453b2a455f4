"""Conformance: CustomResourceDefinitions make kinds served, with structural-schema validation, pruning,
defaults, printer columns, and a status subresource only when declared."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.apiserver.cluster_fixture import Cluster, status_of

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def widget_crd(group: str, *, with_status: bool) -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "required": ["size"],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "green"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
            "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "mode": {"type": "string", "default": "auto"},
        },
    }
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": spec_schema,
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                },
            }
        },
        "additionalPrinterColumns": [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    }
    if with_status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
            "versions": [version],
        },
    }


async def _served(cluster: Cluster, group: str) -> None:
    for _ in range(100):
        raw = await cluster.raw("GET", f"/apis/{group}/v1/namespaces/{cluster.namespace}/widgets")
        if raw.status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"widgets.{group} never became served")


async def _crd(cluster: Cluster, with_status: bool) -> AsyncIterator[str]:
    group = f"t{uuid.uuid4().hex[:6]}.example.com"
    ext: Any = client.ApiextensionsV1Api(cluster.api)  # accepts plain dicts at run time
    await ext.create_custom_resource_definition(widget_crd(group, with_status=with_status))
    try:
        await _served(cluster, group)
        yield group
    finally:
        try:
            await ext.delete_custom_resource_definition(f"widgets.{group}")
        except ApiException as err:
            if err.status != 404:
                raise


@pytest.fixture
async def widgets(cluster: Cluster) -> AsyncIterator[str]:
    async for group in _crd(cluster, with_status=True):
        yield group


def widget(object_name: str, group: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": object_name}, "spec": spec}


async def create(cluster: Cluster, group: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = await cluster.custom.create_namespaced_custom_object(
        group, "v1", cluster.namespace, "widgets", body
    )
    return created


async def test_crd_kind_is_discoverable(cluster: Cluster, widgets: str) -> None:
    raw = await cluster.raw("GET", f"/apis/{widgets}/v1")
    resources = {r["name"]: r for r in raw.body["resources"]}
    assert resources["widgets"]["kind"] == "Widget" and resources["widgets"]["shortNames"] == ["wdg"]
    assert "widgets/status" in resources
    groups = await cluster.raw("GET", "/apis")
    assert widgets in [g["name"] for g in groups.body["groups"]]
    crd = await client.ApiextensionsV1Api(cluster.api).read_custom_resource_definition(f"widgets.{widgets}")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions.get("Established") == "True"


async def test_schema_validation(cluster: Cluster, widgets: str) -> None:
    ok = await create(cluster, widgets, widget("ok", widgets, size=3, color="red", name="abc", ratio=0.5))
    assert ok["spec"]["mode"] == "auto", "defaults from the schema are applied"
    bad_cases: list[tuple[dict[str, Any], str, str]] = [
        ({"color": "red"}, "spec.size", "Required value"),
        ({"size": 11}, "spec.size", "less than or equal to 10"),
        ({"size": 0}, "spec.size", "greater than or equal to 1"),
        ({"size": "3"}, "spec.size", "must be of type integer"),
        ({"size": 1, "color": "blue"}, "spec.color", "Unsupported value"),
        ({"size": 1, "name": "ABC"}, "spec.name", "should match"),
        ({"size": 1, "name": "abcdefghij"}, "spec.name", "Too long"),
        ({"size": 1, "ratio": 0}, "spec.ratio", "greater than 0"),
        ({"size": 1, "tags": ["a", "b", "c"]}, "spec.tags", "Too many"),
    ]
    for i, (spec, field, words) in enumerate(bad_cases):
        with pytest.raises(ApiException) as err:
            await create(cluster, widgets, widget(f"bad{i}", widgets, **spec))
        body = status_of(err.value)
        assert body["reason"] == "Invalid", spec
        causes = body["details"]["causes"]
        assert any(c["field"] == field and words in c["message"] for c in causes), (spec, causes)


async def test_pruning_and_preserved_fields(cluster: Cluster, widgets: str) -> None:
    body = widget("w", widgets, size=1, unknown="dropped", extra={"anything": {"goes": [1, 2]}})
    body["topLevel"] = "dropped too"
    created = await create(cluster, widgets, body)
    assert "unknown" not in created["spec"]
    assert "topLevel" not in created
    assert created["spec"]["extra"] == {"anything": {"goes": [1, 2]}}


async def test_status_subresource_when_declared(cluster: Cluster, widgets: str) -> None:
    body = widget("w", widgets, size=1)
    body["status"] = {"phase": "ignored on create"}
    created = await create(cluster, widgets, body)
    assert "status" not in created
    created["status"] = {"phase": "Ready"}
    updated = await cluster.custom.replace_namespaced_custom_object_status(
        widgets, "v1", cluster.namespace, "widgets", "w", created
    )
    assert updated["status"] == {"phase": "Ready"}


async def test_without_status_subresource_status_is_plain_data(cluster: Cluster) -> None:
    async for group in _crd(cluster, with_status=False):
        body = widget("w", group, size=1)
        body["status"] = {"phase": "kept"}
        created = await create(cluster, group, body)
        assert created["status"] == {"phase": "kept"}
        raw = await cluster.raw("GET", f"/apis/{group}/v1/namespaces/{cluster.namespace}/widgets/w/status")
        assert raw.status == 404
        created["status"] = {"phase": "changed"}
        updated = await cluster.custom.replace_namespaced_custom_object(
            group, "v1", cluster.namespace, "widgets", "w", created
        )
        assert updated["metadata"]["generation"] == 2, (
            "without a status subresource, status is part of the content"
        )


async def test_printer_columns_in_tables(cluster: Cluster, widgets: str) -> None:
    await create(cluster, widgets, widget("w", widgets, size=4, color="green"))
    raw = await cluster.raw("GET", f"/apis/{widgets}/v1/namespaces/{cluster.namespace}/widgets", accept=TABLE)
    assert [c["name"] for c in raw.body["columnDefinitions"]] == ["Name", "Size", "Color", "Age"]
    cells = raw.body["rows"][0]["cells"]
    assert cells[:3] == ["w", 4, "green"]
    assert cells[3].endswith("s")


async def test_deleting_the_crd_removes_its_instances(cluster: Cluster) -> None:
    group = f"t{uuid.uuid4().hex[:6]}.example.com"
    ext: Any = client.ApiextensionsV1Api(cluster.api)  # accepts plain dicts at run time
    await ext.create_custom_resource_definition(widget_crd(group, with_status=True))
    await _served(cluster, group)
    await create(cluster, group, widget("w", group, size=1))
    await ext.delete_custom_resource_definition(f"widgets.{group}")
    for _ in range(100):
        raw = await cluster.raw("GET", f"/apis/{group}/v1/namespaces/{cluster.namespace}/widgets")
        if raw.status == 404:
            break
        await asyncio.sleep(0.1)
    assert raw.status == 404
    with pytest.raises(ApiException) as err:
        await ext.read_custom_resource_definition(f"widgets.{group}")
    assert err.value.status == 404


async def test_invalid_crd_is_rejected(cluster: Cluster) -> None:
    crd = widget_crd("example.com", with_status=False)
    crd["metadata"]["name"] = "wrong.example.com"
    with pytest.raises(ApiException) as err:
        ext: Any = client.ApiextensionsV1Api(cluster.api)
        await ext.create_custom_resource_definition(crd)
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    assert any(c["field"] == "metadata.name" for c in body["details"]["causes"])


def ruled_crd(group: str, rule: str = "self.min <= self.max") -> dict[str, Any]:
    crd = widget_crd(group, with_status=False)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["required"] = []
    spec["properties"].update(
        {
            "min": {"type": "integer"},
            "max": {"type": "integer"},
            "id": {
                "type": "string",
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "id is immutable"}],
            },
        }
    )
    spec["x-kubernetes-validations"] = [{"rule": rule, "message": "min must not exceed max"}]
    return crd


async def test_cel_validation_rules(cluster: Cluster) -> None:
    group = f"t{uuid.uuid4().hex[:6]}.example.com"
    ext: Any = client.ApiextensionsV1Api(cluster.api)
    await ext.create_custom_resource_definition(ruled_crd(group))
    try:
        await _served(cluster, group)
        created = await create(cluster, group, widget("w", group, min=1, max=2, id="a"))
        with pytest.raises(ApiException) as err:
            await create(cluster, group, widget("bad", group, min=3, max=2))
        causes = status_of(err.value)["details"]["causes"]
        assert [(c["field"], c["message"]) for c in causes] == [
            ("spec", 'Invalid value: "object": min must not exceed max')
        ]
        created["spec"]["id"] = "b"
        with pytest.raises(ApiException) as err2:
            await cluster.custom.replace_namespaced_custom_object(
                group, "v1", cluster.namespace, "widgets", "w", created
            )
        causes = status_of(err2.value)["details"]["causes"]
        assert causes[0]["field"] == "spec.id" and "id is immutable" in causes[0]["message"]
    finally:
        await ext.delete_custom_resource_definition(f"widgets.{group}")
    with pytest.raises(ApiException) as err3:
        await ext.create_custom_resource_definition(ruled_crd(f"x{group}", rule="self.min <="))
    assert status_of(err3.value)["reason"] == "Invalid"
