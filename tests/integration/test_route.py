"""A standalone Route in front of a Configuration (examples/route-configuration), rolled out like a Service."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from rollout.api.rollout import Phase
from rollout_lab.sandbox.apiserver import kinds
from tests.integration.harness import NS, controller, eventually, finished, phase_of, sandbox, settles

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}


def configuration(revision: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Configuration",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": {"template": {"metadata": {"name": revision}, "spec": {"containers": [{"image": image}]}}},
    }


async def test_standalone_route_is_pinned_and_rolled_out() -> None:
    async with sandbox() as cluster:
        store = cluster.store
        cluster.apply_policy("shop-canary", POLICY)
        store.create(kinds.CONFIGURATIONS, configuration("shop-v1", "ghcr.io/acme/shop:v1"))
        await eventually(lambda: store.get(kinds.REVISIONS, NS, "shop-v1") is not None)
        store.create(
            kinds.ROUTES,
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Route",
                "metadata": {
                    "name": "shop-frontend",
                    "namespace": NS,
                    "labels": {"knrollout.dev/policy": "shop-canary"},
                },
                "spec": {"traffic": [{"revisionName": "shop-v1", "percent": 100}]},
            },
        )

        def route_traffic() -> list[dict[str, Any]]:
            return list(store.get(kinds.ROUTES, NS, "shop-frontend")["spec"]["traffic"])

        async with controller(cluster) as ctl:

            def writes() -> float:
                return (
                    ctl.metrics.registry.get_sample_value(
                        "knrollout_traffic_writes_total", {"outcome": "written"}
                    )
                    or 0.0
                )

            pinned = await eventually(
                lambda: [e for e in route_traffic() if e.get("tag") == "latest"] and route_traffic(),
                within=10,
            )
            assert {
                (e.get("revisionName"), e.get("configurationName"), e.get("percent"), e.get("tag"))
                for e in pinned
            } == {
                ("shop-v1", None, 100, "stable"),
                (None, "shop", 0, "latest"),
            }
            # pinned once, then left alone (a Route's `latest` entry names its Configuration: what the
            # controller compares must be what it writes, or it rewrites the Route forever)
            await asyncio.sleep(0.5)
            assert writes() == 1
            cfg = copy.deepcopy(store.get(kinds.CONFIGURATIONS, NS, "shop"))
            cfg.pop("status", None)
            cfg["spec"]["template"] = configuration("shop-v2", "ghcr.io/acme/shop:v2")["spec"]["template"]
            store.update(kinds.CONFIGURATIONS, cfg)
            name = "shop-frontend.shop-v2.1"
            await eventually(lambda: phase_of(cluster, name) is not None, within=10)
            done = await eventually(lambda: finished(cluster, name), within=15)
            assert done.status.phase == Phase.SUCCEEDED and done.spec.target.kind == "Route"
            stable = [e for e in route_traffic() if e.get("tag") == "stable"]
            assert stable == [
                {"revisionName": "shop-v2", "percent": 100, "tag": "stable", "latestRevision": False}
            ]
            # one spec.traffic write per plan (pin, candidate at 0%, 20%, 50%, promotion), none of them
            # taken for someone else's drift
            assert writes() <= 5
            assert "TrafficDriftCorrected" not in cluster.reasons("shop-frontend")


def _manageable(cluster: Any) -> dict[str, Any] | None:
    conds = (cluster.policy("shop-canary").get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "TargetsManageable"), None)


async def test_route_that_follows_no_single_configuration_is_reported_and_left_alone() -> None:
    """revisionName entries of two Configurations: no `latest` entry could be written for it. Reported once
    (an Event, the policy's condition), never written, no reconcile retried."""
    async with sandbox() as cluster:
        store = cluster.store
        cluster.apply_policy("shop-canary", POLICY)
        for name, revision in (("shop", "shop-v1"), ("cart", "cart-v1")):
            cfg = configuration(revision, f"ghcr.io/acme/{name}:v1")
            cfg["metadata"]["name"] = name
            store.create(kinds.CONFIGURATIONS, cfg)
        await eventually(lambda: all(store.get(kinds.REVISIONS, NS, r) for r in ("shop-v1", "cart-v1")))
        traffic = [
            {"revisionName": "shop-v1", "percent": 100},
            {"revisionName": "cart-v1", "percent": 0, "tag": "cart"},
        ]
        store.create(
            kinds.ROUTES,
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Route",
                "metadata": {
                    "name": "mixed",
                    "namespace": NS,
                    "labels": {"knrollout.dev/policy": "shop-canary"},
                },
                "spec": {"traffic": traffic},
            },
        )
        async with controller(cluster) as ctl:
            cond = await eventually(lambda: (c := _manageable(cluster)) and c["status"] == "False" and c)
            assert "Route mixed" in cond["message"] and "2 Configurations (cart, shop)" in cond["message"]
            (event,) = await eventually(
                lambda: [e for e in cluster.events("mixed") if e["reason"] == "UnmanageableTraffic"]
            )
            await settles(ctl)  # not looping
            assert event["type"] == "Warning" and "left alone" in event["message"]
            route = store.get(kinds.ROUTES, NS, "mixed")
            assert [(e["revisionName"], e["percent"]) for e in route["spec"]["traffic"]] == [
                ("shop-v1", 100),
                ("cart-v1", 0),
            ]
            assert (
                ctl.metrics.registry.get_sample_value(
                    "knrollout_traffic_writes_total", {"outcome": "written"}
                )
                is None
            )
            assert cluster.rollouts("mixed") == []
            errors = [m for m in ctl.metrics.registry.collect() if m.name == "knrollout_reconcile_errors"]
            assert not [s for m in errors for s in m.samples if s.name.endswith("_total")]
