"""The simulator reconciles only what a write touched, and that reaches the same state as reconciling
everything (a full resync after any history writes nothing)."""

from __future__ import annotations

from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.knative.controller import RESOURCE_TYPES
from rollout_lab.sandbox.knative.index import KnativeIndex
from rollout_lab.sandbox.knative.plan import all_refs, plan
from tests.sandbox.knative.harness import Sandbox, sandbox, service_manifest, template


def full_plan(sb: Sandbox) -> list[object]:
    """What reconciling every object from a fresh listing would write now."""
    listing = {kind: sb.store.list(rt)[0] for kind, rt in RESOURCE_TYPES.items()}
    index = KnativeIndex.of(listing)
    return list(plan(index, all_refs(index), sb.sim.fleet, sb.clock.now(), sb.sim.settings))


async def test_a_write_reconciles_its_neighbours_not_every_object() -> None:
    async with sandbox(ready_delay=1.0) as sb:
        for i in range(40):
            sb.store.create(kinds.KSERVICES, service_manifest(name=f"svc-{i:02d}"))
        await sb.advance(3)
        assert all(sb.service(f"svc-{i:02d}")["status"].get("latestReadyRevisionName") for i in range(40))
        before = sb.sim.reconciles
        sb.update_service(
            "svc-07",
            traffic=[
                {"revisionName": "svc-07-00001", "percent": 100, "tag": "stable"},
                {"latestRevision": True, "percent": 0, "tag": "latest"},
            ],
        )
        await sb.advance(0.1)
        assert [t.get("tag") for t in sb.service("svc-07")["status"]["traffic"]] == ["stable", "latest"]
        # the Service, its Route, its revision, twice or three times over as their statuses settle: a
        # couple of dozen reconciles, where reconciling everything would be 160 per pass
        assert sb.sim.reconciles - before < 30
        assert full_plan(sb) == []


async def test_incremental_state_matches_a_full_resync() -> None:
    async with sandbox(ready_delay=1.0) as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        sb.store.create(kinds.KSERVICES, service_manifest(name="other"))
        await sb.advance(2)
        sb.update_service(
            template=template("ghcr.io/acme/hello:v2"),
            traffic=[
                {"revisionName": "hello-00001", "percent": 90, "tag": "stable"},
                {"revisionName": "hello-00002", "percent": 10, "tag": "canary"},
            ],
        )
        sb.store.create(
            kinds.ROUTES,
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Route",
                "metadata": {"name": "mix", "namespace": "default"},
                "spec": {"traffic": [{"configurationName": "hello", "percent": 100}]},
            },
        )
        await sb.advance(0.5)  # hello-00002 is not Ready yet: the old split is served
        assert full_plan(sb) == []
        await sb.advance(2)
        assert [t["percent"] for t in sb.service()["status"]["traffic"]] == [90, 10]
        mix = sb.get(kinds.ROUTES, "mix")
        assert mix["status"]["traffic"][0]["revisionName"] == "hello-00002"
        labels = sb.revision("hello-00001")["metadata"]["labels"]
        assert labels["serving.knative.dev/routingState"] == "active"
        annotations = sb.get(kinds.CONFIGURATIONS, "hello")["metadata"]["annotations"]
        assert annotations["serving.knative.dev/routes"] == "mix"
        assert full_plan(sb) == []
        sb.store.delete(kinds.ROUTES, "default", "mix")
        sb.update_service(traffic=[{"latestRevision": True, "percent": 100}])
        await sb.advance(1)
        annotations = sb.get(kinds.CONFIGURATIONS, "hello")["metadata"]["annotations"]
        assert annotations["serving.knative.dev/routes"] == "hello"  # latestRevision: by configuration
        assert (
            sb.revision("hello-00001")["metadata"]["labels"]["serving.knative.dev/routingState"] == "reserve"
        )
        assert full_plan(sb) == []
