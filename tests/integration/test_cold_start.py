"""Cold starts in the sandbox (pods take seconds to start, the activator holds requests meanwhile): a
candidate with min-scale 2 is referenced at 0% under `canary` while Pending, so that Knative applies its
min-scale, and gets its first share only once both pods are ready; it is promoted."""

from __future__ import annotations

import asyncio
from typing import Any

from rollout.api.rollout import Phase
from rollout_lab.sandbox.apiserver import kinds
from tests.integration.harness import controller, eventually, finished, onboard, sandbox

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}


async def test_a_cold_candidate_gets_traffic_only_with_its_min_scale_pods_ready() -> None:
    async with sandbox(cold_start=1.5, ready_delay=0.3, rps=20.0) as cluster:
        pods: list[tuple[float, int, int]] = []  # (time, ready, wanted) of the candidate, as committed

        def record(rt: Any, entry: Any) -> None:
            if entry.name == "hello-00002":
                status = entry.obj.get("status") or {}
                pods.append((loop.time(), status.get("actualReplicas", 0), status.get("desiredReplicas", 0)))

        loop = asyncio.get_running_loop()
        cluster.store.on_commit(kinds.REVISIONS, record)
        cluster.apply_policy("canary", POLICY)
        async with controller(cluster):
            await onboard(cluster, "hello")

            def min_scale_two(svc: dict[str, Any]) -> None:
                svc["spec"]["template"] = {
                    "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "2"}},
                    "spec": {"containers": [{"image": "ghcr.io/acme/hello:v2"}]},
                }

            cluster.update_service("hello", min_scale_two)
            parked = await eventually(
                lambda: [e for e in cluster.spec_traffic("hello") if e.get("tag") == "canary"], within=10
            )
            assert [(e["revisionName"], e["percent"]) for e in parked] == [("hello-00002", 0)]
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=40)
    assert done.status.phase == Phase.SUCCEEDED, done.status.message
    first_share = next(s.at for s in cluster.served if s.service == "hello" and s.percents.get("hello-00002"))
    before = [p for p in pods if p[0] <= first_share]
    assert before and before[-1][1] >= 2, (before[-3:], first_share)  # both min-scale pods were ready
    assert any(ready < 2 <= wanted for _, ready, wanted in before)  # ... after a wait for the second
