"""Two replicas against one sandbox: only the lease holder writes; a holder that loses its lease stops
writing at once; a standby takes over."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from rollout.controller.app import Controller
from rollout.kube.leader import LeaseSettings
from rollout_lab.sandbox.store_api import ResourceType
from tests.integration.harness import controller, eventually, finished, onboard, sandbox

LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease", has_status=False)
POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}


def writes(ctl: Controller) -> int:
    """Writes this replica sent to anything but the Lease."""
    total = 0.0
    for metric in ctl.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name != "knrollout_kube_request_duration_seconds_count":
                continue
            if (
                sample.labels["verb"] in ("create", "patch", "update", "delete")
                and sample.labels["resource"] != "leases"
            ):
                total += sample.value
    return int(total)


def lease(identity: str) -> LeaseSettings:
    return LeaseSettings(
        name="rollout-test",
        namespace="default",
        identity=identity,
        lease_duration=3.0,
        renew_deadline=2.0,
        retry_period=0.25,
    )


async def test_only_the_leader_writes_and_a_lost_lease_stops_it_at_once() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", POLICY)
        async with contextlib.AsyncExitStack() as stack:
            a = await stack.enter_async_context(controller(cluster, leader_elect=True, lease=lease("a")))
            b = await stack.enter_async_context(controller(cluster, leader_elect=True, lease=lease("b")))
            await eventually(lambda: a.leading or b.leading, within=10)
            leader, standby = (a, b) if a.leading else (b, a)
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: finished(cluster, "hello-00002.1"), within=20)
            assert writes(leader) > 0 and writes(standby) == 0
            assert not standby.leading

            # someone else takes the lease (for 4s): the leader must stop before its next write
            stolen = cluster.store.get(LEASES, "default", "rollout-test")
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            stolen["spec"].update({"holderIdentity": "thief", "renewTime": now, "leaseDurationSeconds": 4})
            cluster.store.update(LEASES, stolen)
            await eventually(lambda: not leader.leading, within=1.0)  # retry period 0.25s
            before = (writes(a), writes(b))
            cluster.new_revision("hello", "ghcr.io/acme/hello:v3")
            await asyncio.sleep(2.5)  # the thief's lease still runs: nobody may write
            assert (writes(a), writes(b)) == before
            assert cluster.rollout("hello-00003.1") is None
            # the thief never renews: after its lease expires one replica takes over and carries on
            done = await eventually(lambda: finished(cluster, "hello-00003.1"), within=20)
            assert done.status.phase.value == "Succeeded"
            assert sum(1 for c in (a, b) if c.leading) == 1


async def test_a_stopping_leader_releases_the_lease_and_the_standby_takes_over_at_once() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", POLICY)
        first = controller(cluster, leader_elect=True, lease=lease("first"))
        a = await first.__aenter__()
        exited = False
        try:
            await eventually(lambda: a.leading, within=10)
            async with controller(cluster, leader_elect=True, lease=lease("second")) as b:
                await asyncio.sleep(0.5)
                assert not b.leading
                loop = asyncio.get_running_loop()
                await first.__aexit__(None, None, None)
                exited = True
                stopped = loop.time()
                await eventually(lambda: b.leading, within=3)
                assert loop.time() - stopped < 1.5  # well under the 3s lease: it was released, not expired
        finally:
            if not exited:
                await first.__aexit__(None, None, None)
