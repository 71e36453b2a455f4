"""kubernetes-asyncio's leader election (a Lease lock) against the sandbox: one leader at a time, and a
successor takes over once the leader stops renewing and its lease expires."""

from __future__ import annotations

import asyncio
import contextlib

from kubernetes_asyncio import client
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from tests.sandbox.apiserver.cluster_fixture import Cluster


async def test_lease_leader_election_and_takeover(cluster: Cluster) -> None:
    leading: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    def candidate(identity: str) -> leaderelection.LeaderElection:
        lock = LeaseLock("rollout-controller", cluster.namespace, identity, cluster.api)

        async def started() -> None:
            leading[identity].set()
            await asyncio.Event().wait()  # lead until cancelled

        async def stopped() -> None:
            leading[identity].clear()

        config = electionconfig.Config(
            lock, lease_duration=2, renew_deadline=1.5, retry_period=1, onstarted_leading=started,
            onstopped_leading=stopped,
        )  # fmt: skip
        return leaderelection.LeaderElection(config)

    first = asyncio.create_task(candidate("a").run())
    await asyncio.wait_for(leading["a"].wait(), 10)
    second = asyncio.create_task(candidate("b").run())
    await asyncio.sleep(1.5)
    assert not leading["b"].is_set(), "only one leader while the lease is renewed"
    lease = await client.CoordinationV1Api(cluster.api).read_namespaced_lease(
        "rollout-controller", cluster.namespace
    )
    assert lease.spec.holder_identity == "a"
    assert lease.spec.lease_duration_seconds == 2

    first.cancel()  # the leader dies without releasing the lease
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await asyncio.wait_for(leading["b"].wait(), 10)
    lease = await client.CoordinationV1Api(cluster.api).read_namespaced_lease(
        "rollout-controller", cluster.namespace
    )
    assert lease.spec.holder_identity == "b"
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second
