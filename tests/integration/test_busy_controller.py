"""A controller that is slow to get to a target (busy with others) still counts each step's bake from when it
SAW Knative serve the step's split (its informer event), not from when a reconcile got round to it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rollout.controller.views import ObjectKey
from tests.integration.harness import controller, eventually, onboard, sandbox

DELAY = 1.0  # every reconcile of the Service starts this late, as behind a long work queue
POLICY = {
    "strategy": {"canary": {"steps": [{"weight": 10, "bake": "2s"}, {"weight": 50, "bake": "2s"}]}},
    "analysis": {"interval": "1s", "metrics": []},
}


async def test_the_bake_counts_from_the_served_split_seen_not_from_the_late_reconcile() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", POLICY)
        async with controller(cluster) as ctl:
            await onboard(cluster, "hello")
            reconcile = ctl.targets.reconcile

            async def late(key: ObjectKey) -> float | None:
                await asyncio.sleep(DELAY)
                return await reconcile(key)

            ctl.targets.reconcile = late  # type: ignore[method-assign]
            loop = asyncio.get_running_loop()
            wall = datetime.now(UTC).timestamp() - loop.time()  # loop time -> wall clock
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")

            def started() -> datetime | None:
                r = cluster.rollout("hello-00002.1")
                if r is None or r.status.current_step != 0 or not r.status.traffic_applied:
                    return None
                return r.status.step_started_at

            step_started = await eventually(started, within=20)
            served = next(
                s for s in cluster.served if s.service == "hello" and s.percents.get("hello-00002") == 10
            )
            seen_after = step_started.timestamp() - (served.at + wall)
            # the informer sees the split within a few ms; the reconcile that records it is DELAY late
            assert 0 <= seen_after < DELAY / 2, seen_after
