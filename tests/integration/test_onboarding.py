"""Onboarding and starting rollouts, against the sandbox through kubernetes-asyncio."""

import asyncio
from typing import Any

from rollout_lab.sandbox.apiserver import kinds
from tests.integration.harness import POLICIES, controller, events_for, eventually, sandbox, template

CANARY = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "2s"}},
    "analysis": {"interval": "2s", "noData": "pass", "metrics": []},
}


async def test_opted_in_service_is_pinned_and_new_revision_starts_a_rollout() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", CANARY)
        cluster.create_service("hello", rps=0)
        await eventually(lambda: cluster.latest_created("hello") == "hello-00001")
        async with controller(cluster):
            traffic = await eventually(
                lambda: (
                    [e for e in cluster.spec_traffic("hello") if e.get("tag") == "stable"]
                    and cluster.spec_traffic("hello")
                ),
                within=10,
            )
            assert {"revisionName": "hello-00001", "percent": 100, "tag": "stable"}.items() <= traffic[
                0
            ].items()
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            r = await eventually(lambda: cluster.rollout("hello-00002.1"), within=10)
            assert r.spec.stable_revision == "hello-00001"
            assert await events_for(cluster, "hello", "TrafficPinned")
            assert await events_for(cluster, "hello", "RolloutStarted")


async def test_namespace_scoping_leaves_other_namespaces_alone() -> None:
    async with sandbox() as cluster:
        cluster.store.create(
            kinds.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
        )
        for ns in ("default", "team-a"):
            body = {
                "apiVersion": "knrollout.dev/v1alpha1",
                "kind": "RolloutPolicy",
                "metadata": {"name": "canary", "namespace": ns},
                "spec": CANARY,
            }
            cluster.store.create(POLICIES, body)
            svc = {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": {"name": "hello", "namespace": ns, "labels": {"knrollout.dev/policy": "canary"}},
                "spec": {"template": template("ghcr.io/acme/hello:v1")},
            }
            cluster.store.create(kinds.KSERVICES, svc)

        def traffic(ns: str) -> list[dict[str, Any]]:
            return list(cluster.store.get(kinds.KSERVICES, ns, "hello")["spec"].get("traffic") or [])

        async with controller(cluster, namespaces=("team-a",)):
            await eventually(lambda: any(e.get("tag") == "stable" for e in traffic("team-a")), within=10)
            await asyncio.sleep(1.0)
            assert traffic("default") == [{"latestRevision": True, "percent": 100}]
