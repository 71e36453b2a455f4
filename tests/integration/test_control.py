"""Manual requests (as `rollout pause|resume|promote|abort|retry` write them), drift, an invalid policy and an
unmanageable traffic layout, against the sandbox."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio import config as kube_config

from rollout.api.rollout import Phase
from rollout_lab.sandbox.apiserver import kinds
from tests.integration.harness import (
    allowed_splits,
    assert_within_plan,
    controller,
    events_for,
    eventually,
    finished,
    onboard,
    phase_of,
    sandbox,
    settles,
    template,
)

GATED: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"pause": {}}, {"weight": 50}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}


def stable_of(cluster: Any, name: str) -> list[tuple[str | None, int]]:
    return [
        (e.get("revisionName"), e.get("percent", 0))
        for e in cluster.spec_traffic(name)
        if e.get("tag") == "stable"
    ]


async def test_pause_resume_then_promote_from_a_gate() -> None:
    async with sandbox() as cluster:
        policy = {
            **GATED,
            "strategy": {
                "canary": {
                    "steps": [{"weight": 20, "bake": "30s"}, {"pause": {}}, {"weight": 50, "bake": "30s"}],
                    "interval": "1s",
                }
            },
        }
        cluster.apply_policy("canary", policy)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Progressing", within=15)
            cluster.request("hello-00002.1", "pause", request_id="p1")
            paused = await eventually(
                lambda: (r := cluster.rollout("hello-00002.1")) and r.status.phase == Phase.PAUSED and r
            )
            assert paused.status.handled_request == "p1" and paused.status.canary_weight == 20
            cluster.request("hello-00002.1", "resume", request_id="r1")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Progressing")
            cluster.request("hello-00002.1", "promote", request_id="pr1", by="bob")
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=15)
            assert done.status.phase == Phase.SUCCEEDED
            assert stable_of(cluster, "hello") == [("hello-00002", 100)]
            msgs = [e["message"] for e in await events_for(cluster, "hello-00002.1", "PromoteRequested")]
            assert "requested by bob" in msgs[0]
            assert_within_plan(cluster, "hello", allowed_splits("hello-00001", "hello-00002", [20]))


async def test_abort_is_final_and_retry_starts_a_new_attempt() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", GATED)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)
            cluster.request("hello-00002.1", "abort", request_id="a1", by="carol")
            aborted = await eventually(lambda: finished(cluster, "hello-00002.1"), within=15)
            assert aborted.status.phase == Phase.ABORTED
            # stable back at 100%, the candidate parked at 0% under `canary` for debugging
            await eventually(lambda: stable_of(cluster, "hello") == [("hello-00001", 100)])
            canary = [e for e in cluster.spec_traffic("hello") if e.get("tag") == "canary"]
            assert canary == [
                {"revisionName": "hello-00002", "percent": 0, "tag": "canary", "latestRevision": False}
            ]
            # the final plan is written when the abort is decided; the status says when Knative serves it
            served = await eventually(
                lambda: (r := cluster.rollout("hello-00002.1")) and r.status.traffic_applied and r, within=5
            )
            conds = {c.type: c for c in served.status.conditions}
            assert (conds["TrafficApplied"].status, conds["TrafficApplied"].reason) == ("True", "PlanServed")
            cluster.request("hello-00002.1", "retry", request_id="t1")
            retry = await eventually(lambda: cluster.rollout("hello-00002.2"), within=15)
            assert retry.spec.attempt == 2 and retry.spec.stable_revision == "hello-00001"
            await eventually(lambda: phase_of(cluster, "hello-00002.2") == "Paused", within=15)
            cluster.request("hello-00002.2", "resume", request_id="t2")
            done = await eventually(lambda: finished(cluster, "hello-00002.2"), within=15)
            assert done.status.phase == Phase.SUCCEEDED
            first = cluster.rollout("hello-00002.1")
            assert first is not None and first.status.phase == Phase.ABORTED  # history kept
            assert_within_plan(cluster, "hello", allowed_splits("hello-00001", "hello-00002", [20, 50]))


async def test_removing_the_policy_label_mid_rollout_ends_it_on_stable_and_lets_go() -> None:
    """The label goes (the informers stop seeing the Service): the running rollout ends Aborted/OptedOut with
    stable at 100% — the last traffic write — with an Event on the Service and the Rollout; afterwards
    the Service's traffic is the user's."""
    async with sandbox() as cluster:
        cluster.apply_policy("canary", GATED)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)

            def opt_out(svc: dict[str, Any]) -> None:
                del svc["metadata"]["labels"]["knrollout.dev/policy"]

            cluster.update_service("hello", opt_out)
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=5)
            assert (done.status.phase, done.status.reason) == (Phase.ABORTED, "OptedOut")
            assert [
                (e.get("revisionName"), e.get("percent"), e.get("tag")) for e in cluster.spec_traffic("hello")
            ] == [
                ("hello-00001", 100, "stable"),
                (None, 0, "latest"),
            ]
            for name in ("hello", "hello-00002.1"):
                (event,) = await events_for(cluster, name, "OptedOut")
                assert event["type"] == "Warning" and "knrollout.dev/policy" in event["message"]
            # the status still follows Knative until the final plan is served
            await eventually(lambda: (r := cluster.rollout("hello-00002.1")) and r.status.traffic_applied)

            def by_hand(svc: dict[str, Any]) -> None:
                svc["spec"]["traffic"] = [{"latestRevision": True, "percent": 100}]

            cluster.update_service("hello", by_hand)
            await eventually(lambda: cluster.latest_created("hello") == "hello-00002")
            await asyncio.sleep(0.5)
            assert cluster.spec_traffic("hello") == [{"latestRevision": True, "percent": 100}]
            assert [r.metadata.name for r in cluster.rollouts("hello")] == ["hello-00002.1"]
            assert_within_plan(cluster, "hello", allowed_splits("hello-00001", "hello-00002", [20]))


async def gitops_sync(cluster: Any, name: str, traffic: list[dict[str, Any]]) -> None:
    """What a GitOps agent does: a kubernetes-asyncio client merge-patching spec.traffic as
    `argocd-controller`."""
    async with await kube_config.new_client_from_config(str(cluster.kubeconfig)) as api:
        await client.CustomObjectsApi(api).patch_namespaced_custom_object(
            "serving.knative.dev",
            "v1",
            "default",
            "services",
            name,
            {"spec": {"traffic": traffic}},
            field_manager="argocd-controller",
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]  # (not in the stubs)
        )


def traffic_owners(cluster: Any, name: str) -> list[tuple[str, str, str]]:
    """(manager, operation, subresource) of the managedFields entries that own spec.traffic."""
    return [
        (e["manager"], e["operation"], e.get("subresource", ""))
        for e in cluster.service(name)["metadata"]["managedFields"]
        if "f:traffic" in e["fieldsV1"].get("f:spec", {})
    ]


async def test_drift_is_restored_with_a_warning_naming_the_change() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", GATED)
        async with controller(cluster):
            await onboard(cluster, "hello")
            assert traffic_owners(cluster, "hello") == [("knative-rollout", "Update", "")]
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)

            await gitops_sync(cluster, "hello", [{"latestRevision": True, "percent": 100}])
            await eventually(lambda: "TrafficDriftCorrected" in cluster.reasons("hello"), within=10)
            await eventually(lambda: stable_of(cluster, "hello") == [("hello-00001", 80)], within=10)
            (event,) = [e for e in cluster.events("hello") if e["reason"] == "TrafficDriftCorrected"]
            assert event["type"] == "Warning"
            assert "spec.traffic was changed by 'argocd-controller' (Update at " in event["message"]
            assert "hello-00002 20% (canary)" in event["message"] and "latest 100%" in event["message"]
            # restoring the plan took spec.traffic back: one owner again, the controller
            assert traffic_owners(cluster, "hello") == [("knative-rollout", "Update", "")]
            r = cluster.rollout("hello-00002.1")
            assert r is not None and r.status.phase == Phase.PAUSED  # the rollout itself is untouched


async def test_a_conflict_on_the_first_step_write_is_not_drift() -> None:
    """A person applies the new image with `traffic: latest 100%`; the controller's first writes meet 409s
    (its re-pin, then the rollout's first plan). That plan was never served, so the person changed nothing
    of the rollout's: no drift Warning."""
    async with sandbox() as cluster:
        cluster.apply_policy("canary", GATED)
        async with controller(cluster) as ctl:
            await onboard(cluster, "hello")
            conflict = cluster.env.api.faults.add(
                action="error", code=409, count=3, verbs=["patch", "update"], resources=["services"]
            )
            svc = copy.deepcopy(cluster.service("hello"))
            svc.pop("status", None)
            svc["spec"]["template"] = template("ghcr.io/acme/hello:v2", None)
            svc["spec"]["traffic"] = [{"latestRevision": True, "percent": 100}]
            cluster.store.update(kinds.KSERVICES, svc, field_manager="kubectl-client-side-apply")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)
            await eventually(lambda: stable_of(cluster, "hello") == [("hello-00001", 80)], within=10)
            assert conflict.injected == 3
            await settles(ctl)
            assert "TrafficDriftCorrected" not in cluster.reasons("hello")
            assert "TrafficDriftCorrected" not in cluster.reasons("hello-00002.1")


async def test_invalid_policy_leaves_traffic_alone_and_says_why() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", {"strategy": {"canary": {"steps": [{"weight": 10, "pause": {}}]}}})
        async with controller(cluster):
            cluster.create_service("hello")
            await eventually(lambda: "PolicyInvalid" in cluster.reasons("canary"), within=10)
            await eventually(lambda: "PolicyInvalid" in cluster.reasons("hello"), within=10)
            conds = {c["type"]: c for c in cluster.policy("canary")["status"]["conditions"]}
            assert (
                conds["Valid"]["status"] == "False"
                and "spec.strategy.canary.steps[0]" in conds["Valid"]["message"]
            )
            assert cluster.spec_traffic("hello") == [{"latestRevision": True, "percent": 100}]
            cluster.apply_policy("canary", GATED)  # fixed in git
            await eventually(lambda: stable_of(cluster, "hello") == [("hello-00001", 100)], within=10)
            await eventually(
                lambda: (
                    {c["type"]: c["status"] for c in cluster.policy("canary")["status"]["conditions"]}[
                        "Valid"
                    ]
                    == "True"
                )
            )


async def test_hand_made_split_is_reported_and_left_alone() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", GATED)
        cluster.create_service("split", policy=None)
        await eventually(lambda: cluster.latest_created("split") == "split-00001")
        for name in ("split-00002", "split-00003"):
            cluster.new_revision("split", f"ghcr.io/acme/split:{name}")
            await eventually(lambda name=name: cluster.latest_created("split") == name)  # type: ignore[misc]
        three_way = [
            {"revisionName": "split-00001", "percent": 50},
            {"revisionName": "split-00002", "percent": 30},
            {"revisionName": "split-00003", "percent": 20},
        ]

        def split_and_opt_in(svc: dict[str, Any]) -> None:
            svc["spec"]["traffic"] = three_way
            svc["metadata"].setdefault("labels", {})["knrollout.dev/policy"] = "canary"

        cluster.update_service("split", split_and_opt_in)
        async with controller(cluster):
            await eventually(lambda: "UnmanageableTraffic" in cluster.reasons("split"), within=10)

            def condition() -> dict[str, Any] | None:
                conds = (cluster.policy("canary").get("status") or {}).get("conditions") or []
                return next(
                    (c for c in conds if c["type"] == "TargetsManageable" and c["status"] == "False"), None
                )

            cond = await eventually(condition, within=10)
            assert "Service split" in cond["message"] and "3 entries" in cond["message"]
            assert [e.get("percent") for e in cluster.spec_traffic("split")] == [50, 30, 20]
            assert cluster.rollouts("split") == []


async def test_a_traffic_block_knatives_rules_refuse_is_reported_once_and_not_sent() -> None:
    """Whatever the reason the controller's block would break Knative's rules (here a validator that refuses
    everything), nothing is sent: an Event and the policy's condition say why, the target is left as it is,
    and the reconcile is not retried in a loop."""

    def refuse(entries: Any, *, in_service: bool) -> list[str]:
        return ["spec.traffic[1].configurationName: expected exactly one, got neither"]

    async with sandbox() as cluster:
        cluster.apply_policy("canary", GATED)
        cluster.create_service("hello")
        await eventually(lambda: cluster.latest_created("hello") == "hello-00001")
        async with controller(cluster, validator=refuse) as ctl:
            (event,) = await eventually(
                lambda: [e for e in cluster.events("hello") if e["reason"] == "UnmanageableTraffic"]
            )
            assert event["type"] == "Warning" and "got neither" in event["message"]

            def condition() -> dict[str, Any] | None:
                conds = (cluster.policy("canary").get("status") or {}).get("conditions") or []
                return next(
                    (c for c in conds if c["type"] == "TargetsManageable" and c["status"] == "False"), None
                )

            cond = await eventually(condition)
            assert "Service hello" in cond["message"] and "got neither" in cond["message"]
            await settles(ctl)  # not retried in a loop
            assert cluster.spec_traffic("hello") == [{"latestRevision": True, "percent": 100}]
            samples = {
                s.labels.get("outcome"): s.value
                for m in ctl.metrics.registry.collect()
                for s in m.samples
                if s.name == "knrollout_traffic_writes_total"
            }
            assert samples == {"refused": 1.0}
