"""The API server misbehaves (5xx, 429, 409, dropped watches, 410 Expired) on about 10% of requests while
several rollouts run: every rollout still ends correctly and no split outside the plan is ever served."""

from __future__ import annotations

from typing import Any

from rollout.api.rollout import Phase
from tests.integration.harness import (
    allowed_splits,
    assert_within_plan,
    controller,
    eventually,
    finished,
    onboard,
    sandbox,
)

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 40}, {"weight": 70}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}
SERVICES = ("alpha", "bravo", "charlie", "delta")


async def test_rollouts_end_correctly_under_injected_api_faults() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", POLICY)
        faults = cluster.env.api.faults
        async with controller(cluster):
            for name in SERVICES:
                await onboard(cluster, name)
            # about 10% of the controller's requests fail, watches drop every 2s, new watches sometimes expire
            for code, share in ((500, 0.03), (503, 0.02), (429, 0.02), (409, 0.03)):
                faults.add(action="error", code=code, share=share, duration=120, retry_after=1)
            faults.add(action="drop-watch", after=2.0, duration=120)
            faults.add(action="expire-watch", share=0.3, count=10, duration=120)
            for name in SERVICES:
                cluster.new_revision(name, f"ghcr.io/acme/{name}:v2")
            for name in SERVICES:
                done = await eventually(lambda name=name: finished(cluster, f"{name}-00002.1"), within=60)  # type: ignore[misc]
                assert done.status.phase == Phase.SUCCEEDED, done.status.message
            injected = sum(f.injected for f in faults.active())
            faults.clear()
            for name in SERVICES:
                assert_within_plan(
                    cluster, name, allowed_splits(f"{name}-00001", f"{name}-00002", [10, 40, 70])
                )
                stable = [e for e in cluster.spec_traffic(name) if e.get("tag") == "stable"]
                assert stable[0]["revisionName"] == f"{name}-00002" and stable[0]["percent"] == 100
            assert injected >= 10, f"only {injected} faults were injected: the test did not test much"
