"""Rollouts end to end without metrics (no Prometheus needed): the traffic ladder, an unready candidate, a
superseding revision, a reverted template, manual requests, drift. Through kubernetes-asyncio against the
sandbox API server and its Knative simulator."""

from __future__ import annotations

from typing import Any

from rollout.api.rollout import Phase
from rollout.controller.views import ObjectKey
from tests.integration.harness import (
    ROLLOUTS,
    allowed_splits,
    assert_within_plan,
    controller,
    events_for,
    eventually,
    finished,
    onboard,
    phase_of,
    reasons_when,
    sandbox,
)


def policy(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "strategy": {"canary": {"steps": steps, "interval": "1s"}},
        "analysis": {"interval": "1s", "metrics": []},
        **extra,
    }


LADDER = [{"weight": 10}, {"weight": 30}, {"weight": 60}]


async def test_candidate_walks_every_step_and_is_promoted() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", policy(LADDER))
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=20)
            assert done.status.phase == Phase.SUCCEEDED
            traffic = cluster.spec_traffic("hello")
            assert [(e.get("revisionName"), e.get("percent"), e.get("tag")) for e in traffic] == [
                ("hello-00002", 100, "stable"),
                (None, 0, "latest"),
            ]
            seen = assert_within_plan(
                cluster, "hello", allowed_splits("hello-00001", "hello-00002", [10, 30, 60])
            )
            weights = [s.get("hello-00002", 0) for s in seen]
            assert [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]] == [0, 10, 30, 60, 100]
            reasons = await reasons_when(cluster, "hello-00002.1", "Promoted")
            assert reasons[:2] == ["RolloutStarted", "CandidateReady"]
            assert reasons.count("StepAdvanced") == 2 and reasons[-2:] == ["AnalysisPassed", "Promoted"]
            assert {"RolloutStarted", "Promoted"} <= set(await reasons_when(cluster, "hello", "Promoted"))


async def test_candidate_that_never_becomes_ready_fails_at_its_deadline_with_its_message() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", policy(LADDER, deadlines={"candidateReady": "3s"}))
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2", {"ready-delay": "10m"})
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=15)
            assert done.status.phase == Phase.FAILED and done.status.reason == "CandidateReadyDeadline"
            assert (
                "did not become Ready in time" in done.status.message
                or "CandidateReadyDeadline" in done.status.message
            )
            events = await events_for(cluster, "hello-00002.1", "CandidateReadyDeadline")
            assert events[0]["type"] == "Warning" and "hello-00002" in events[0]["message"]
            assert_within_plan(cluster, "hello", [{"hello-00001": 100}])


async def test_failed_candidate_fails_with_the_revisions_own_message() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", policy(LADDER))
        async with controller(cluster):
            await onboard(cluster, "hello")
            behaviour = {"fail": "ImagePullBackOff", "fail-message": "manifest for acme/hello:v2 not found"}
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2", behaviour)
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=15)
            assert done.status.phase == Phase.FAILED and done.status.reason == "CandidateFailed"
            (event,) = await events_for(cluster, "hello-00002.1", "CandidateFailed")
            assert "manifest for acme/hello:v2 not found" in event["message"]
            assert_within_plan(cluster, "hello", [{"hello-00001": 100}])


async def test_newer_revision_supersedes_the_running_rollout() -> None:
    async with sandbox() as cluster:
        gate: list[dict[str, Any]] = [{"weight": 20}, {"pause": {}}, {"weight": 50}]
        cluster.apply_policy("canary", policy(gate))
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)
            cluster.new_revision("hello", "ghcr.io/acme/hello:v3")
            old = await eventually(lambda: finished(cluster, "hello-00002.1"), within=15)
            assert old.status.phase == Phase.SUPERSEDED
            new = await eventually(lambda: cluster.rollout("hello-00003.1"), within=15)
            assert new.spec.stable_revision == "hello-00001"  # stable unchanged
            await eventually(lambda: phase_of(cluster, "hello-00003.1") == "Paused", within=15)
            served = assert_within_plan(
                cluster,
                "hello",
                allowed_splits("hello-00001", "hello-00002", [20])
                + allowed_splits("hello-00001", "hello-00003", [20]),
            )
            # hello-00003 never served traffic before its own rollout reached its first step
            first3 = next(i for i, s in enumerate(served) if "hello-00003" in s)
            assert all("hello-00002" not in s for s in served[first3:])


async def test_template_reverted_to_stable_ends_the_rollout_cleanly() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", policy([{"weight": 20}, {"pause": {}}]))
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)
            cluster.new_revision("hello", "ghcr.io/acme/hello:v1")  # git revert
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=15)
            assert done.status.reason == "TemplateReverted"
            await eventually(lambda: cluster.latest_created("hello") == "hello-00003")
            await eventually(
                lambda: (
                    [e.get("percent") for e in cluster.spec_traffic("hello") if e.get("tag") == "stable"]
                    == [100]
                )
            )
            assert (
                cluster.rollout("hello-00003.1") is None
            )  # the stable configuration again: nothing to roll out
            stable = [e for e in cluster.spec_traffic("hello") if e.get("tag") == "stable"]
            assert stable[0]["revisionName"] == "hello-00001"


async def test_users_extra_zero_percent_tags_are_kept() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", policy(LADDER))
        async with controller(cluster):
            traffic = [
                {"latestRevision": True, "percent": 100},
                {"revisionName": "hello-00001", "percent": 0, "tag": "v1-debug"},
            ]
            await onboard(cluster, "hello", traffic=traffic)
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: finished(cluster, "hello-00002.1"), within=20)
            tags = {e.get("tag"): e.get("revisionName") for e in cluster.spec_traffic("hello")}
            assert tags == {"stable": "hello-00002", "latest": None, "v1-debug": "hello-00001"}


async def test_an_annotation_only_template_change_is_rolled_out() -> None:
    """min-scale set on the template: Knative stamps out a new revision with the same spec; it is a new
    configuration (not the stable one reverted), so it is rolled out like any other."""
    async with sandbox() as cluster:
        cluster.apply_policy("canary", policy([{"weight": 50}]))
        async with controller(cluster):
            await onboard(cluster, "hello")

            def scale(svc: dict[str, Any]) -> None:
                svc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = "1"

            cluster.update_service("hello", scale)
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=10)
            assert done.status.phase == Phase.SUCCEEDED
            assert_within_plan(cluster, "hello", allowed_splits("hello-00001", "hello-00002", [50]))


async def test_history_beyond_the_limit_is_deleted_when_a_rollout_finishes() -> None:
    """historyLimit 1: the reconcile that ends the second rollout also deletes the first (not a later one)."""
    async with sandbox() as cluster:
        cluster.apply_policy("canary", policy([{"weight": 50}], historyLimit=1))
        async with controller(cluster) as ctl:
            passes: list[ObjectKey] = []
            reconcile = ctl.targets.reconcile

            async def counted(key: ObjectKey) -> float | None:
                passes.append(key)
                return await reconcile(key)

            ctl.targets.reconcile = counted  # type: ignore[method-assign]
            seen: dict[str, int] = {}

            def on_commit(rt: Any, entry: Any) -> None:
                phase = (entry.obj.get("status") or {}).get("phase")
                if entry.name == "hello-00003.1" and phase == "Succeeded":
                    seen.setdefault("finished", len(passes))
                if entry.name == "hello-00002.1" and entry.type == "DELETED":
                    seen.setdefault("deleted", len(passes))

            cluster.store.on_commit(ROLLOUTS, on_commit)
            await onboard(cluster, "hello")
            for version, name in (("v2", "hello-00002.1"), ("v3", "hello-00003.1")):
                cluster.new_revision("hello", f"ghcr.io/acme/hello:{version}")
                await eventually(lambda name=name: finished(cluster, name), within=10)  # type: ignore[misc]
            await eventually(lambda: "deleted" in seen, within=5)
            assert seen["deleted"] == seen["finished"], (seen, passes)
            assert [r.metadata.name for r in cluster.rollouts("hello")] == ["hello-00003.1"]


async def test_an_aborted_candidate_leaves_the_route_after_its_keep_time() -> None:
    """A Ready candidate that did not make it stays reachable at 0% under `canary` for
    deadlines.keepFailedCandidate, then the controller takes it off the route (and says so no more)."""
    gate: list[dict[str, Any]] = [{"weight": 20}, {"pause": {}}, {"weight": 50}]
    cluster_policy = policy(gate, deadlines={"keepFailedCandidate": "3s"})
    async with sandbox() as cluster:
        cluster.apply_policy("canary", cluster_policy)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)
            cluster.request("hello-00002.1", "abort", request_id="a1")
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=15)
            assert done.status.candidate_kept_until is not None

            def canary_tag() -> list[dict[str, Any]]:
                return [e for e in cluster.spec_traffic("hello") if e.get("tag") == "canary"]

            assert await eventually(canary_tag, within=5)  # parked at 0%
            await eventually(lambda: not canary_tag(), within=10)
            r = await eventually(
                lambda: (
                    (r := cluster.rollout("hello-00002.1")) and r.status.candidate_kept_until is None and r
                )
            )
            assert r.status.phase == Phase.ABORTED and "stays reachable" not in r.status.message
            assert_within_plan(
                cluster, "hello", [{"hello-00001": 100}, {"hello-00001": 80, "hello-00002": 20}]
            )
