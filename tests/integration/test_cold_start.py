"""Cold starts in the sandbox (pods take seconds to start, the activator holds requests meanwhile): a
candidate with min-scale 2 is referenced at 0% under `canary` while Pending, so that Knative applies its
min-scale, and gets its first share only once both pods are ready; it is promoted."""

from __future__ import annotations

import asyncio
from typing import Any

from rollout.api.rollout import Phase
from rollout.knative.minscale import HELD_FROM, MIN_SCALE
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


def ready_pods(cluster: Any, revision: str) -> int:
    obj = cluster.store.get(kinds.REVISIONS, "default", revision) or {}
    return int((obj.get("status") or {}).get("actualReplicas") or 0)


async def test_a_scale_from_zero_candidate_is_pre_warmed_before_every_share() -> None:
    """Stable runs 4 pods (its min-scale); the candidate has no min-scale of its own. Before each share it
    is held at that share of stable's 4 pods (1 for 20%, 2 for 50%, 4 for the promotion), written as the
    min-scale of its Revision, and gets the share only with those pods ready; its own (none) comes back."""
    async with sandbox(cold_start=1.0, ready_delay=0.3, rps=20.0) as cluster:
        ready: list[tuple[float, int]] = []  # (time, ready pods) of the candidate, as committed
        annotations: list[dict[str, str]] = []

        def record(rt: Any, entry: Any) -> None:
            if entry.name == "hello-00003":
                ready.append((loop.time(), (entry.obj.get("status") or {}).get("actualReplicas") or 0))
                annotations.append(dict((entry.obj.get("metadata") or {}).get("annotations") or {}))

        def four_pods(svc: dict[str, Any]) -> None:
            svc["spec"]["template"]["metadata"]["annotations"] = {MIN_SCALE: "4"}

        loop = asyncio.get_running_loop()
        cluster.store.on_commit(kinds.REVISIONS, record)
        cluster.apply_policy("canary", POLICY)
        async with controller(cluster) as ctl:
            await onboard(cluster, "hello")
            cluster.update_service("hello", four_pods)
            first = await eventually(lambda: finished(cluster, "hello-00002.1"), within=40)
            assert first.status.phase == Phase.SUCCEEDED, first.status.message
            await eventually(lambda: ready_pods(cluster, "hello-00002") >= 4, within=15)
            cluster.new_revision("hello", "ghcr.io/acme/hello:v3")  # no min-scale: from zero
            done = await eventually(lambda: finished(cluster, "hello-00003.1"), within=60)
            await eventually(lambda: HELD_FROM not in annotations[-1], within=10)
            writes = {
                outcome: ctl.metrics.registry.get_sample_value(
                    "knrollout_prewarm_writes_total", {"outcome": outcome}
                )
                for outcome in ("held", "restored", "failed")
            }
    assert done.status.phase == Phase.SUCCEEDED, done.status.message
    assert done.status.stable_pods_before == 4

    def pods_when(percent: int) -> int:
        at = next(
            s.at for s in cluster.served if s.service == "hello" and s.percents.get("hello-00003") == percent
        )
        before = [pods for t, pods in ready if t <= at]
        return before[-1] if before else 0

    had = {share: pods_when(share) for share in (20, 50, 100)}
    assert had[20] >= 1 and had[50] >= 2 and had[100] >= 4, (had, ready)
    holds = [a.get(MIN_SCALE) for a in annotations if HELD_FROM in a]
    assert {"2", "4"} <= set(holds), holds  # written on the Revision
    assert MIN_SCALE not in annotations[-1]  # its own (none) is back
    assert (writes["held"] or 0) >= 2 and (writes["restored"] or 0) >= 1 and not writes["failed"], writes


async def test_a_superseded_candidate_loses_its_hold() -> None:
    """A candidate held at a pre-warm min-scale is superseded by a newer revision: the hold on the old
    candidate's Revision is undone (the newest rollout's candidate is the only one held)."""
    async with sandbox(cold_start=1.0, ready_delay=0.3, rps=20.0) as cluster:
        slow = {
            **POLICY,
            "strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "10s"}},
        }

        def four_pods(svc: dict[str, Any]) -> None:
            svc["spec"]["template"]["metadata"]["annotations"] = {MIN_SCALE: "4"}

        def annotations(revision: str) -> dict[str, str]:
            obj = cluster.store.get(kinds.REVISIONS, "default", revision) or {}
            return dict((obj.get("metadata") or {}).get("annotations") or {})

        cluster.apply_policy("canary", POLICY)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.update_service("hello", four_pods)
            await eventually(lambda: finished(cluster, "hello-00002.1"), within=40)
            await eventually(lambda: ready_pods(cluster, "hello-00002") >= 4, within=15)
            cluster.apply_policy("canary", slow)  # the next rollout bakes 10 s per step
            cluster.new_revision("hello", "ghcr.io/acme/hello:v3")
            held = await eventually(lambda: HELD_FROM in annotations("hello-00003"), within=60)
            assert held and annotations("hello-00003")[MIN_SCALE] in {"1", "2", "4"}
            cluster.new_revision("hello", "ghcr.io/acme/hello:v4")
            gone = await eventually(lambda: HELD_FROM not in annotations("hello-00003"), within=30)
            superseded = await eventually(lambda: finished(cluster, "hello-00003.1"), within=30)
    assert gone and MIN_SCALE not in annotations("hello-00003")
    assert superseded.status.phase == Phase.SUPERSEDED, superseded.status.message
