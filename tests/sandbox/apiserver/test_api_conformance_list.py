"""Conformance: LIST with label and field selectors, `limit`/`continue`, and Table responses."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.apiserver.cluster_fixture import KSVC, Cluster, status_of

G, V, P = KSVC
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture
async def labelled(cluster: Cluster) -> Cluster:
    await cluster.create_ksvc("a", tier="web", env="prod")
    await cluster.create_ksvc("b", tier="web", env="dev")
    await cluster.create_ksvc("c", tier="db")
    await cluster.create_ksvc("d")
    return cluster


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web", ["a", "b"]),
        ("tier!=web", ["c", "d"]),
        ("env in (prod,staging)", ["a"]),
        ("env notin (prod)", ["b", "c", "d"]),
        ("tier", ["a", "b", "c"]),
        ("!tier", ["d"]),
        ("tier=web,env=dev", ["b"]),
        ("tier in (web, db), !env", ["c"]),
    ],
)
async def test_label_selectors(labelled: Cluster, selector: str, expected: list[str]) -> None:
    found = await labelled.custom.list_namespaced_custom_object(
        G, V, labelled.namespace, P, label_selector=selector
    )
    assert [i["metadata"]["name"] for i in found["items"]] == expected


async def test_malformed_label_selector_is_400(labelled: Cluster) -> None:
    with pytest.raises(ApiException) as err:
        await labelled.custom.list_namespaced_custom_object(
            G, V, labelled.namespace, P, label_selector="tier in web"
        )
    assert status_of(err.value)["reason"] == "BadRequest"


async def test_field_selectors(labelled: Cluster) -> None:
    ns = labelled.namespace
    by_name = await labelled.custom.list_namespaced_custom_object(
        G, V, ns, P, field_selector="metadata.name=c"
    )
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["c"]
    not_name = await labelled.custom.list_namespaced_custom_object(
        G, V, ns, P, field_selector="metadata.name!=c"
    )
    assert [i["metadata"]["name"] for i in not_name["items"]] == ["a", "b", "d"]
    everywhere = await labelled.custom.list_cluster_custom_object(
        G, V, P, field_selector=f"metadata.namespace={ns}"
    )
    assert len(everywhere["items"]) == 4
    with pytest.raises(ApiException) as err:
        await labelled.custom.list_namespaced_custom_object(G, V, ns, P, field_selector="spec.unknown=1")
    assert status_of(err.value)["reason"] == "BadRequest"


async def test_event_field_selectors(cluster: Cluster) -> None:
    ns = cluster.namespace
    for name, kind in (("e1", "Pod"), ("e2", "Service")):
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name),
            involved_object=client.V1ObjectReference(kind=kind, name="x", namespace=ns),
            reason="Testing",
            message="hello",
            type="Normal",
        )
        await cluster.core.create_namespaced_event(ns, event)
    found = await cluster.core.list_namespaced_event(
        ns, field_selector="involvedObject.kind=Service,reason=Testing"
    )
    assert [e.metadata.name for e in found.items] == ["e2"]


async def test_limit_and_continue(labelled: Cluster) -> None:
    ns = labelled.namespace
    first = await labelled.custom.list_namespaced_custom_object(G, V, ns, P, limit=3)
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b", "c"]
    token = first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == 1
    await labelled.create_ksvc("e")  # not in the snapshot the token continues
    rest = await labelled.custom.list_namespaced_custom_object(G, V, ns, P, limit=3, _continue=token)
    assert [i["metadata"]["name"] for i in rest["items"]] == ["d"]
    assert not rest["metadata"].get("continue")
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_table_uses_printer_columns(labelled: Cluster) -> None:
    raw = await labelled.raw("GET", f"/apis/{G}/{V}/namespaces/{labelled.namespace}/{P}", accept=TABLE)
    assert raw.body["kind"] == "Table" and raw.body["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in raw.body["columnDefinitions"]]
    assert columns == ["Name", "URL", "LatestCreated", "LatestReady", "Ready", "Reason"]
    assert [r["cells"][0] for r in raw.body["rows"]] == ["a", "b", "c", "d"]
    assert raw.body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_table_of_built_in_kind(cluster: Cluster) -> None:
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"a": "1", "b": "2"})
    await cluster.core.create_namespaced_config_map(cluster.namespace, cm)
    raw = await cluster.raw("GET", f"/api/v1/namespaces/{cluster.namespace}/configmaps/c", accept=TABLE)
    assert [c["name"] for c in raw.body["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert raw.body["rows"][0]["cells"][:2] == ["c", 2]
