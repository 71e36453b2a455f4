"""Three `rollout controller` processes sharing the namespaces as three shards. One is SIGKILLed in the middle of
its rollouts: another replica takes its shard over through the shard's Lease and every rollout finishes. The
killed replica's successor comes back and gets its shard back. From the sandbox's audit log: every namespace
is written by its shard's home replica, then (after the kill) by one stand-in, then by the successor, never by
two replicas at once."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any

from rollout.kube.shards import lease_name, shard_of
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.apiserver.audit import AuditEvent
from tests.integration.harness import ROLLOUTS, Cluster, controller_process, eventually, kill, sandbox
from tests.integration.test_leader import LEASES

SHARDS = 3
LEASE = "rollout-shards"
POLICY: dict[str, Any] = {
    "strategy": {
        "canary": {"steps": [{"weight": 20, "bake": "1s"}, {"weight": 50, "bake": "1s"}], "interval": "1s"}
    },
    "analysis": {"interval": "1s", "metrics": []},
}
FAST_LEASE = ["--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "0.25s"]
AGENT = re.compile(r"^knative-rollout/\S+ \((?P<identity>[^)]+)\)$")


def namespaces() -> dict[int, list[str]]:
    """Three namespaces per shard."""
    by_shard: dict[int, list[str]] = {k: [] for k in range(SHARDS)}
    for i in range(100):
        ns = f"team-{i}"
        if len(by_shard[shard_of(ns, SHARDS)]) < 3:
            by_shard[shard_of(ns, SHARDS)].append(ns)
    return by_shard


def services(by_shard: dict[int, list[str]]) -> list[tuple[str, str]]:
    """30 Services (namespace, name) spread over the nine namespaces."""
    spaces = [ns for k in range(SHARDS) for ns in by_shard[k]]
    return [(spaces[i % len(spaces)], f"svc-{i:02d}") for i in range(30)]


def phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    r = cluster.rollout(name, namespace)
    return r.status.phase.value if r is not None else None


def controller_writes(cluster: Cluster) -> list[tuple[AuditEvent, str]]:
    """Every write a controller replica made (its Leases aside), with the replica's identity, in order."""
    out = []
    for event in cluster.env.api.rest.audit:
        found = AGENT.match(event.user_agent)
        if found and event.resource != "leases.coordination.k8s.io":
            out.append((event, found.group("identity")))
    return sorted(out, key=lambda pair: pair[0].at)


def writers(writes: list[tuple[AuditEvent, str]], namespace: str) -> list[tuple[str, float, float]]:
    """The replicas that wrote to `namespace`, one entry per uninterrupted run: (identity, first, last)."""
    runs: list[tuple[str, float, float]] = []
    for event, identity in writes:
        if event.namespace != namespace:
            continue
        if runs and runs[-1][0] == identity:
            runs[-1] = (identity, runs[-1][1], event.at)
        else:
            runs.append((identity, event.at, event.at))
    return runs


async def test_a_killed_shards_rollouts_finish_under_a_stand_in_and_return_home(tmp_path: Path) -> None:
    by_shard = namespaces()
    svcs = services(by_shard)
    async with sandbox(rps=0.0) as cluster, contextlib.AsyncExitStack() as stack:
        for ns in sorted({ns for ns, _ in svcs}):
            cluster.store.create(
                kinds.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
            cluster.apply_policy("canary", POLICY, namespace=ns)
        for ns, name in svcs:
            cluster.create_service(name, namespace=ns)

        async def replica(shard: int, identity: str) -> asyncio.subprocess.Process:
            args = ["--shards", str(SHARDS), "--shard", str(shard), "--identity", identity]
            return await stack.enter_async_context(
                controller_process(
                    cluster.kubeconfig,
                    tmp_path / f"{identity}.log",
                    *args,
                    "--lease-name",
                    LEASE,
                    *FAST_LEASE,
                )
            )

        procs = {k: await replica(k, f"r{k}") for k in range(SHARDS)}

        def pinned() -> bool:
            return all(
                any(e.get("tag") == "stable" for e in cluster.service(n, ns)["spec"].get("traffic") or [])
                for ns, n in svcs
            )

        await eventually(pinned, within=30)
        for ns, name in svcs:
            cluster.new_revision(name, "ghcr.io/acme/hello:v2", namespace=ns)
        doomed = [(ns, n) for ns, n in svcs if shard_of(ns, SHARDS) == 1]

        def midway() -> bool:
            return any(
                (r := cluster.rollout(f"{n}-00002.1", ns)) is not None
                and (r.status.canary_weight or 0) > 0
                and not r.status.phase.terminal
                for ns, n in doomed
            )

        await eventually(midway, within=20)
        await kill(procs[1])
        killed_at = time.monotonic()
        unfinished = [(ns, n) for ns, n in doomed if phase(cluster, ns, f"{n}-00002.1") != "Succeeded"]
        assert unfinished, "the shard's rollouts all finished before the kill: nothing was taken over"

        await eventually(
            lambda: all(phase(cluster, ns, f"{n}-00002.1") == "Succeeded" for ns, n in svcs), within=60
        )
        stood_in = {identity for e, identity in controller_writes(cluster) if e.at > killed_at}
        assert stood_in <= {"r0", "r2"}

        # the successor of the killed pod asks for its shard back and gets it
        await replica(1, "r1b")

        def home_again() -> bool:
            held = cluster.store.get(LEASES, "default", lease_name(LEASE, 1, SHARDS))
            return held is not None and held["spec"].get("holderIdentity") == "r1b"

        await eventually(home_again, within=20)
        for ns, name in doomed:
            cluster.new_revision(name, "ghcr.io/acme/hello:v3", namespace=ns)
        await eventually(
            lambda: all(phase(cluster, ns, f"{n}-00003.1") == "Succeeded" for ns, n in doomed), within=60
        )

        writes = controller_writes(cluster)
        for shard, spaces in by_shard.items():
            for ns in spaces:
                runs = writers(writes, ns)
                names = [identity for identity, _, _ in runs]
                assert len(names) == len(set(names)), f"{ns}: a replica wrote again after another: {runs}"
                assert names[0] == f"r{shard}", runs
                if shard != 1:
                    assert names == [f"r{shard}"], f"{ns} of shard {shard} was written by others: {runs}"
                    continue
                assert names[-1] == "r1b", runs
                if len(names) == 3:  # r1, the stand-in, r1b: one after another, never overlapping
                    assert runs[0][2] < killed_at < runs[1][1]
                    assert runs[1][2] < runs[2][1]
                else:
                    assert names == ["r1", "r1b"]
        took_over = [ns for ns in by_shard[1] if len(writers(writes, ns)) == 3]
        assert took_over, "no stand-in wrote to the killed replica's namespaces"
        # and the takeover went through the Lease: the stand-in is in the Lease's history
        assert (
            cluster.store.get(LEASES, "default", lease_name(LEASE, 1, SHARDS))["spec"]["leaseTransitions"]
            >= 2
        )
        assert all(cluster.store.get(ROLLOUTS, ns, f"{n}-00003.1") for ns, n in doomed)
