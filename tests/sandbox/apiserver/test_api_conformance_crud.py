"""Conformance: create/read/update/delete semantics through kubernetes-asyncio (sandbox or real cluster)."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.apiserver.cluster_fixture import KSVC, Cluster, status_of

G, V, P = KSVC


def cm(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name))


async def test_create_sets_system_fields(cluster: Cluster) -> None:
    first = await cluster.create_ksvc("a")
    second = await cluster.create_ksvc("b")
    meta = first["metadata"]
    assert isinstance(meta["resourceVersion"], str) and meta["resourceVersion"].isdigit()
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert meta["uid"] != second["metadata"]["uid"] and len(meta["uid"]) == 36
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    got = await cluster.custom.get_namespaced_custom_object(G, V, cluster.namespace, P, "a")
    assert got["metadata"]["uid"] == meta["uid"]


async def test_create_answers_201_and_generate_name(cluster: Cluster) -> None:
    body = {"metadata": {"generateName": "cfg-"}, "data": {"k": "v"}}
    raw = await cluster.raw("POST", f"/api/v1/namespaces/{cluster.namespace}/configmaps", body=body)
    assert raw.status == 201
    name = raw.body["metadata"]["name"]
    assert name.startswith("cfg-") and len(name) == len("cfg-") + 5
    assert "generation" not in raw.body["metadata"]


async def test_already_exists_and_not_found(cluster: Cluster) -> None:
    await cluster.create_ksvc("dup")
    with pytest.raises(ApiException) as exists:
        await cluster.create_ksvc("dup")
    body = status_of(exists.value)
    assert (body["code"], body["reason"]) == (409, "AlreadyExists")
    assert body["details"] == {"name": "dup", "group": G, "kind": P}
    with pytest.raises(ApiException) as missing:
        await cluster.custom.get_namespaced_custom_object(G, V, cluster.namespace, P, "nope")
    body = status_of(missing.value)
    assert (body["code"], body["reason"]) == (404, "NotFound")
    assert body["message"] == f'{P}.{G} "nope" not found'
    with pytest.raises(ApiException) as cm_missing:
        await cluster.core.read_namespaced_config_map("nope", cluster.namespace)
    assert status_of(cm_missing.value)["message"] == 'configmaps "nope" not found'


async def test_invalid_names_the_fields(cluster: Cluster) -> None:
    bad = cluster.ksvc("bad")
    bad["spec"]["template"]["spec"] = {"containerConcurrency": "ten"}
    with pytest.raises(ApiException) as err:
        await cluster.custom.create_namespaced_custom_object(G, V, cluster.namespace, P, bad)
    body = status_of(err.value)
    assert (body["code"], body["reason"]) == (422, "Invalid")
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"spec.template.spec.containers", "spec.template.spec.containerConcurrency"} <= fields
    assert body["details"]["kind"] == "Service" and body["details"]["group"] == G
    with pytest.raises(ApiException) as name_err:
        await cluster.create_ksvc("Upper_Case")
    assert status_of(name_err.value)["details"]["causes"][0]["field"] == "metadata.name"


async def test_replace_with_stale_resource_version_conflicts(cluster: Cluster) -> None:
    svc = await cluster.create_ksvc("a")
    fresh = dict(svc, metadata={**svc["metadata"], "labels": {"v": "1"}})
    await cluster.custom.replace_namespaced_custom_object(G, V, cluster.namespace, P, "a", fresh)
    stale = dict(svc, metadata={**svc["metadata"], "labels": {"v": "2"}})
    with pytest.raises(ApiException) as err:
        await cluster.custom.replace_namespaced_custom_object(G, V, cluster.namespace, P, "a", stale)
    body = status_of(err.value)
    assert (body["code"], body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]


async def test_generation_and_status_subresource(cluster: Cluster) -> None:
    ns = cluster.namespace
    svc = await cluster.create_ksvc("a")
    svc["metadata"]["labels"] = {"only": "metadata"}
    svc["status"] = {"observedGeneration": 7}
    svc = await cluster.custom.replace_namespaced_custom_object(G, V, ns, P, "a", svc)
    assert svc["metadata"]["generation"] == 1, "metadata changes leave generation alone"
    assert "status" not in svc, "the main endpoint ignores status"
    svc["spec"]["template"]["spec"]["containers"][0]["image"] = "example.com/app:2"
    svc = await cluster.custom.replace_namespaced_custom_object(G, V, ns, P, "a", svc)
    assert svc["metadata"]["generation"] == 2
    svc["status"] = {"observedGeneration": 2, "url": "http://a.example.com"}
    svc["spec"]["template"]["spec"]["containers"][0]["image"] = "example.com/ignored:3"
    svc = await cluster.custom.replace_namespaced_custom_object_status(G, V, ns, P, "a", svc)
    assert svc["status"]["url"] == "http://a.example.com"
    assert svc["spec"]["template"]["spec"]["containers"][0]["image"] == "example.com/app:2"
    assert svc["metadata"]["generation"] == 2, "/status never bumps generation"


async def test_unchanged_update_keeps_resource_version(cluster: Cluster) -> None:
    svc = await cluster.create_ksvc("a")
    again = await cluster.custom.replace_namespaced_custom_object(G, V, cluster.namespace, P, "a", svc)
    assert again["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]


async def test_put_name_mismatch_is_bad_request(cluster: Cluster) -> None:
    svc = await cluster.create_ksvc("a")
    svc["metadata"]["name"] = "b"
    with pytest.raises(ApiException) as err:
        await cluster.custom.replace_namespaced_custom_object(G, V, cluster.namespace, P, "a", svc)
    assert status_of(err.value)["reason"] == "BadRequest"


async def test_delete_with_finalizers(cluster: Cluster) -> None:
    ns = cluster.namespace
    body = cluster.ksvc("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await cluster.custom.create_namespaced_custom_object(G, V, ns, P, body)
    pending = await cluster.custom.delete_namespaced_custom_object(G, V, ns, P, "held")
    assert pending["metadata"]["deletionTimestamp"]
    still = await cluster.custom.get_namespaced_custom_object(G, V, ns, P, "held")
    assert still["metadata"]["finalizers"] == ["example.com/hold"]
    still["metadata"]["finalizers"] = []
    await cluster.custom.replace_namespaced_custom_object(G, V, ns, P, "held", still)
    with pytest.raises(ApiException) as err:
        await cluster.custom.get_namespaced_custom_object(G, V, ns, P, "held")
    assert err.value.status == 404


async def test_delete_answers_status_and_accepts_propagation(cluster: Cluster) -> None:
    ns = cluster.namespace
    await cluster.create_ksvc("a")
    done = await cluster.custom.delete_namespaced_custom_object(
        G, V, ns, P, "a", body=client.V1DeleteOptions(propagation_policy="Foreground")
    )
    # Foreground deletion keeps the owner until its dependents are gone (it has none here).
    assert done["kind"] in ("Status", "Service")
    await cluster.create_ksvc("b")
    status = await cluster.custom.delete_namespaced_custom_object(
        G, V, ns, P, "b", propagation_policy="Background"
    )
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "b" and status["details"]["kind"] == P


async def test_delete_preconditions(cluster: Cluster) -> None:
    await cluster.create_ksvc("a")
    with pytest.raises(ApiException) as err:
        await cluster.custom.delete_namespaced_custom_object(
            G,
            V,
            cluster.namespace,
            P,
            "a",
            body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")
            ),
        )
    assert status_of(err.value)["reason"] == "Conflict"


async def test_dry_run_writes_nothing(cluster: Cluster) -> None:
    raw = await cluster.raw(
        "POST", f"/api/v1/namespaces/{cluster.namespace}/configmaps", body={"metadata": {"name": "dry"}},
        query=[("dryRun", "All")],
    )  # fmt: skip
    assert raw.status == 201
    with pytest.raises(ApiException) as err:
        await cluster.core.read_namespaced_config_map("dry", cluster.namespace)
    assert err.value.status == 404


async def test_unknown_fields_are_pruned_with_a_warning(cluster: Cluster) -> None:
    body = cluster.ksvc("a")
    body["spec"]["bogus"] = 1
    raw = await cluster.raw("POST", f"/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}", body=body)
    assert raw.status == 201
    assert "bogus" not in raw.body["spec"]
    assert 'unknown field \\"spec.bogus\\"' in raw.headers.get("Warning", "")
    body["metadata"]["name"] = "b"
    strict = await cluster.raw(
        "POST",
        f"/apis/{G}/{V}/namespaces/{cluster.namespace}/{P}",
        body=body,
        query=[("fieldValidation", "Strict")],
    )
    assert (strict.status, strict.body["reason"]) == (400, "BadRequest")
    assert 'unknown field "spec.bogus"' in strict.body["message"]


async def test_cluster_wide_list_and_namespaced_list(cluster: Cluster) -> None:
    await cluster.create_ksvc("a")
    everywhere = await cluster.custom.list_cluster_custom_object(G, V, P)
    assert everywhere["kind"] == "ServiceList"
    assert any(i["metadata"]["name"] == "a" for i in everywhere["items"])
    here = await cluster.custom.list_namespaced_custom_object(G, V, cluster.namespace, P)
    assert [i["metadata"]["name"] for i in here["items"]] == ["a"]
    assert here["metadata"]["resourceVersion"].isdigit()


async def test_errors_for_unknown_resources_are_status_objects(cluster: Cluster) -> None:
    raw = await cluster.raw("GET", f"/apis/{G}/v1alpha9/namespaces/{cluster.namespace}/{P}")
    assert raw.status == 404 and raw.body["kind"] == "Status" and raw.body["reason"] == "NotFound"
    raw = await cluster.raw("GET", "/apis/example.invalid/v1/things")
    assert raw.status == 404 and raw.body["kind"] == "Status"


async def test_namespace_lifecycle(cluster: Cluster) -> None:
    ns = f"{cluster.namespace}-extra"
    created = await cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    assert created.status.phase == "Active"
    await cluster.core.create_namespaced_config_map(ns, cm("c"))
    await cluster.core.delete_namespace(ns)
    with pytest.raises(ApiException) as err:
        await cluster.core.create_namespaced_config_map(ns, cm("d"))
    assert err.value.status in (403, 404)
