"""`rollout controller` as a real process, killed with SIGKILL at several points of a rollout and started
again: the rollout continues from where it was (the cluster is the memory), never serves a split outside its
plan, and never goes back a step."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from rollout.api.rollout import Phase
from tests.integration.harness import (
    ROLLOUTS,
    Cluster,
    allowed_splits,
    assert_within_plan,
    controller_process,
    eventually,
    finished,
    kill,
    sandbox,
)

POLICY: dict[str, Any] = {
    "strategy": {
        "canary": {
            "steps": [
                {"weight": 10, "bake": "2s"},
                {"weight": 30, "bake": "2s"},
                {"pause": {"duration": "2s"}},
                {"weight": 60, "bake": "2s"},
            ],
            "interval": "1s",
        }
    },
    "analysis": {"interval": "1s", "metrics": []},
}


def step_of(cluster: Cluster, name: str) -> tuple[str, int] | None:
    r = cluster.rollout(name)
    return (r.status.phase.value, r.status.current_step) if r is not None else None


async def test_sigkill_at_several_points_loses_nothing(tmp_path: Path) -> None:
    async with sandbox() as cluster:
        history: list[tuple[str, int]] = []

        def on_rollout(rt: Any, entry: Any) -> None:
            status = entry.obj.get("status") or {}
            if status.get("phase"):
                history.append((status["phase"], int(status.get("currentStep") or 0)))

        cluster.store.on_commit(ROLLOUTS, on_rollout)
        cluster.apply_policy("canary", POLICY)
        cluster.create_service("hello")
        log = tmp_path / "controller.log"
        name = "hello-00002.1"
        # each kill point: a condition on the rollout; the controller is killed as soon as it holds
        kill_points = [
            lambda: cluster.rollout(name) is not None,  # right after the Rollout was created
            lambda: step_of(cluster, name) == ("Progressing", 1),  # mid-ladder
            lambda: step_of(cluster, name) == ("Paused", 2),  # at the timed gate
            lambda: step_of(cluster, name) in (("Progressing", 3), ("Promoting", 3)),  # last step
        ]
        started_revision = False
        kills = 0
        for point in kill_points:
            async with controller_process(cluster.kubeconfig, log) as proc:
                if not started_revision:
                    await eventually(
                        lambda: any(e.get("tag") == "stable" for e in cluster.spec_traffic("hello")),
                        within=20,
                    )
                    cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
                    started_revision = True
                await eventually(lambda point=point: point() or finished(cluster, name), within=30)  # type: ignore[misc]
                if finished(cluster, name):
                    break
                await kill(proc)
                kills += 1
        async with controller_process(cluster.kubeconfig, log):
            done = await eventually(lambda: finished(cluster, name), within=30)
        assert kills >= 3, f"only {kills} kills happened before the rollout ended"
        assert done.status.phase == Phase.SUCCEEDED, done.status.message
        steps = [s for p, s in history if p in ("Progressing", "Paused", "Promoting")]
        assert steps == sorted(steps), f"the rollout went back a step: {history}"
        assert set(steps) == {0, 1, 2, 3}
        assert_within_plan(cluster, "hello", allowed_splits("hello-00001", "hello-00002", [10, 30, 60]))
        assert cluster.rollouts("hello") == [done]  # one Rollout: no duplicate after a crash


async def test_sigterm_stops_gracefully_and_releases_the_lease(tmp_path: Path) -> None:
    from tests.integration.test_leader import LEASES

    async with sandbox() as cluster:
        cluster.apply_policy("canary", POLICY)
        cluster.create_service("hello")
        log = tmp_path / "controller.log"
        args = [
            "--leader-elect",
            "--lease-name",
            "rollout",
            "--lease-namespace",
            "default",
            "--identity",
            "replica-1",
        ]
        async with controller_process(cluster.kubeconfig, log, *args) as proc:
            await eventually(
                lambda: any(e.get("tag") == "stable" for e in cluster.spec_traffic("hello")), within=20
            )
            held = cluster.store.get(LEASES, "default", "rollout")
            assert held is not None and held["spec"]["holderIdentity"] == "replica-1"
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
        released = cluster.store.get(LEASES, "default", "rollout")
        assert "holderIdentity" not in released["spec"]
        lines = log.read_text().splitlines()
        assert any('"controller stopped"' in line for line in lines)
