"""Real rollouts on a real cluster with Knative, Kourier and Prometheus (hack/kind-up.sh makes one), with the
controller installed by the chart: the scenario list of the sandbox integration tests (issue 5), each
against the real thing. Skipped, with the reason, when no such cluster is reachable (tests/e2e/cluster.py).

Injected API faults (5xx, 429, 409, dropped watches, 410) are the one scenario of that list not run here: they
need the sandbox API server's fault injection, and a real API server's faults are not ours to cause.

Blue/green and A/B (by header) run with a share of the load carrying `Knative-Serving-Tag` (hack/kind-up.sh
enables Knative's tag-header-based-routing).

Timing: the policy steps 20% and 50% with a 20 s bake and analyses every 10 s; each rollout takes about
1-2 minutes, the whole suite about 20 minutes on kind."""

from __future__ import annotations

import asyncio
from typing import Any

import helm_python as helm
import pytest

from tests.e2e.apps import App, allowed_splits, eventually
from tests.e2e.cluster import Kube, Obj, Settings
from tests.e2e.conftest import APPS_NS, RELEASE, RELEASE_NS
from tests.e2e.traffic import steady_load
from tests.e2e.workload import STEPS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROLLOUT = 240.0  # seconds a whole rollout may take here


async def onboarded(app: App, **behaviour: Any) -> str:
    await app.deploy(**behaviour)
    return await app.wait_pinned()


def metric(rollout: Obj, name: str) -> Obj:
    for result in rollout["status"].get("analysis") or []:
        if result["name"] == name:
            return dict(result)
    raise AssertionError(f"no analysis result for {name} in {rollout['status']}")


def test_helm_test_passes(e2e: Settings) -> None:
    with helm.Config(kubeconfig_path=e2e.kubeconfig, namespace=RELEASE_NS) as config:
        result = config.test(RELEASE, timeout=180, logs=True)
    assert "/readyz 200" in result.get("logs", "")


async def test_good_canary_is_promoted_through_every_step(app_factory: Any) -> None:
    app: App = await app_factory()
    stable = await onboarded(app)
    async with steady_load(app.settings.ingress, app.host) as load, app.recording_splits() as splits:
        await app.release("2")
        candidate = app.revision(2)
        done = await app.wait_phase(f"{candidate}.1", {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert [(e.get("revisionName"), e.get("percent"), e.get("tag")) for e in await app.spec_traffic()][
        :1
    ] == [(candidate, 100, "stable")]
    bad = [s for s in splits if s not in allowed_splits(stable, candidate, STEPS)]
    assert bad == [], f"served splits outside the plan: {bad}"
    assert [s.get(candidate, 0) for s in splits if s.get(candidate, 0) not in (0, 100)] == STEPS
    reasons = await app.reasons(f"{candidate}.1")
    assert reasons[0] == "RolloutStarted" and reasons[-1] == "Promoted"
    assert metric(done, "error-rate")["verdict"] == "Pass"
    assert load.sent > 0 and load.server_errors <= 0.01 * load.sent


@pytest.mark.parametrize(
    ("regression", "metric_name"),
    [({"error_rate": 0.3}, "error-rate"), ({"latency_ms": 400}, "latency")],
    ids=["errors", "latency"],
)
async def test_regression_is_rolled_back_with_the_evidence(
    app_factory: Any, regression: dict[str, Any], metric_name: str
) -> None:
    app: App = await app_factory(suffix="-" + metric_name)
    stable = await onboarded(app)
    async with steady_load(app.settings.ingress, app.host):
        await app.release("2", **regression)
        candidate = app.revision(2)
        done = await app.wait_phase(f"{candidate}.1", {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert done["status"]["phase"] == "RolledBack", done["status"]
    failed = metric(done, metric_name)
    assert failed["verdict"] == "Fail" and failed.get("value") is not None, failed
    traffic = {e.get("tag"): (e.get("revisionName"), e.get("percent")) for e in await app.spec_traffic()}
    assert traffic["stable"] == (stable, 100)
    assert traffic["canary"] == (candidate, 0)  # still reachable for debugging
    assert "RegressionDetected" in await app.reasons(f"{candidate}.1")


async def test_blue_green_analyses_the_preview_then_switches_at_once(app_factory: Any) -> None:
    app: App = await app_factory(strategy={"blueGreen": {"previewTag": "preview", "analysisDuration": "40s"}})
    stable = await onboarded(app)
    preview = ("preview", 0.5)  # half the requests ask for the preview by header, as a smoke test would
    async with (
        steady_load(app.settings.ingress, app.host, tagged=preview),
        app.recording_splits() as splits,
    ):
        await app.release("2")
        candidate = app.revision(2)
        done = await app.wait_phase(f"{candidate}.1", {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert (metric(done, "error-rate").get("canaryRequests") or 0) >= 20  # the preview was measured
    assert [s for s in splits if s not in ({stable: 100}, {candidate: 100})] == []  # live traffic never split
    assert splits[-1] == {candidate: 100}


async def test_ab_test_by_header_rolls_back_a_bad_treatment(app_factory: Any) -> None:
    app: App = await app_factory(
        strategy={"abTest": {"routing": "header", "duration": "60s", "promoteOnSuccess": True}}
    )
    stable = await onboarded(app)
    async with (
        steady_load(app.settings.ingress, app.host, tagged=("treatment", 0.5)),
        app.recording_splits() as splits,
    ):
        await app.release("2", error_rate=0.3)
        candidate = app.revision(2)
        done = await app.wait_phase(f"{candidate}.1", {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert done["status"]["phase"] == "RolledBack", done["status"]
    arm = metric(done, "error-rate")
    assert arm["verdict"] == "Fail" and (arm.get("canaryRequests") or 0) > 0, arm
    assert [s for s in splits if s != {stable: 100}] == []  # the cohort alone met the treatment


async def test_unready_candidate_fails_at_its_deadline_with_its_message(app_factory: Any) -> None:
    app: App = await app_factory(deadlines={"candidateReady": "45s", "rollout": "15m"})
    stable = await onboarded(app)
    await app.release("2", crash=True)
    candidate = app.revision(2)
    done = await app.wait_phase(f"{candidate}.1", {"Failed", "RolledBack", "Succeeded"}, 180)
    assert done["status"]["phase"] == "Failed", done["status"]
    assert done["status"]["message"], "the revision's own failure message"
    assert (await app.served_split()) == {stable: 100}


async def test_newer_revision_supersedes_a_running_rollout(app_factory: Any) -> None:
    app: App = await app_factory()
    await onboarded(app)
    async with steady_load(app.settings.ingress, app.host):
        await app.release("2")
        await app.wait_phase(f"{app.revision(2)}.1", {"Progressing"}, 120)
        await app.release("3")
        first = await app.wait_phase(f"{app.revision(2)}.1", {"Superseded"}, 120)
        done = await app.wait_phase(f"{app.revision(3)}.1", {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert first["status"]["phase"] == "Superseded"
    assert done["status"]["phase"] == "Succeeded", done["status"]


async def test_manual_pause_resume_promote_abort_retry(app_factory: Any) -> None:
    app: App = await app_factory()
    stable = await onboarded(app)
    async with steady_load(app.settings.ingress, app.host):
        await app.release("2")
        first = f"{app.revision(2)}.1"
        await app.wait_phase(first, {"Progressing"}, 120)
        await app.request(first, "pause")
        await app.wait_phase(first, {"Paused"}, 60)
        await app.request(first, "resume")
        await app.wait_phase(first, {"Progressing", "Promoting", "Succeeded"}, 60)
        await app.request(first, "promote")
        await app.wait_phase(first, {"Succeeded"}, 120)
        stable = app.revision(2)
        await app.release("3")
        second = f"{app.revision(3)}.1"
        await app.wait_phase(second, {"Progressing"}, 120)
        await app.request(second, "abort")
        aborted = await app.wait_phase(second, {"Aborted"}, 60)
        assert aborted["status"]["phase"] == "Aborted"
        await eventually(lambda: _is(app, {stable: 100}), 60, "stable back at 100%")
        await app.request(second, "retry")
        retried = await app.wait_phase(f"{app.revision(3)}.2", {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert retried["status"]["phase"] == "Succeeded", retried["status"]


async def _is(app: App, split: dict[str, int]) -> bool:
    return await app.served_split() == split


async def test_drift_is_corrected_with_a_warning(app_factory: Any) -> None:
    app: App = await app_factory()
    await onboarded(app)
    async with steady_load(app.settings.ingress, app.host):
        await app.release("2")
        rollout = f"{app.revision(2)}.1"
        await app.wait_phase(rollout, {"Progressing"}, 120)
        planned = await app.spec_traffic()
        await app.kube.merge_patch(
            app.path, {"spec": {"traffic": [{"latestRevision": True, "percent": 100}]}}
        )

        async def restored() -> bool:
            return await app.spec_traffic() == planned or "TrafficDriftCorrected" in await app.reasons(
                app.name
            )

        await eventually(restored, 60, "drift corrected")
        assert "TrafficDriftCorrected" in await app.reasons(app.name) + await app.reasons(rollout)
        done = await app.wait_phase(rollout, {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]


async def _controller_pods(kube: Kube) -> list[str]:
    pods = await kube.items(
        f"/api/v1/namespaces/{RELEASE_NS}/pods?labelSelector=app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=controller"
    )
    return [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]


async def _lease_holder(kube: Kube) -> str:
    lease = await kube.get(
        f"/apis/coordination.k8s.io/v1/namespaces/{RELEASE_NS}/leases/knative-rollout-controller"
    )
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


async def test_only_the_leader_writes_and_a_killed_controller_carries_on(
    app_factory: Any, kube: Kube
) -> None:
    pods = await _controller_pods(kube)
    assert len(pods) == 2
    holder = await _lease_holder(kube)
    assert any(holder.startswith(p) for p in pods), (holder, pods)
    app: App = await app_factory()
    stable = await onboarded(app)
    service = await app.get()
    writers = {
        m.get("manager")
        for m in service["metadata"].get("managedFields", [])
        if "f:traffic" in str(m.get("fieldsV1"))
    }
    assert writers == {"knative-rollout"}, writers
    async with steady_load(app.settings.ingress, app.host), app.recording_splits() as splits:
        await app.release("2")
        candidate = app.revision(2)
        await app.wait_phase(f"{candidate}.1", {"Progressing"}, 120)
        for pod in await _controller_pods(kube):  # both replicas, without grace: like a node dying
            await kube.delete(f"/api/v1/namespaces/{RELEASE_NS}/pods/{pod}")
        done = await app.wait_phase(f"{candidate}.1", {"Succeeded", "RolledBack", "Failed"}, ROLLOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert [s for s in splits if s not in allowed_splits(stable, candidate, STEPS)] == []
    new_holder = await _lease_holder(kube)
    assert new_holder and new_holder != holder


async def test_invalid_policy_leaves_traffic_untouched(app_factory: Any, kube: Kube) -> None:
    # the schema accepts it; the policy's own rules do not (the shorthand needs stepWeight and maxWeight)
    app: App = await app_factory(strategy={"canary": {"stepWeight": 10}})
    await app.deploy()
    await asyncio.sleep(20)
    assert not any(e.get("tag") == "stable" for e in await app.spec_traffic())
    await app.release("2")
    await asyncio.sleep(20)
    assert await app.served_split() == {app.revision(2): 100}  # Knative's default: latest takes all
    assert app.policy is not None
    policy = await kube.get(f"/apis/knrollout.dev/v1alpha1/namespaces/{APPS_NS}/rolloutpolicies/{app.policy}")
    valid = [c for c in ((policy or {}).get("status") or {}).get("conditions", []) if c["type"] == "Valid"]
    assert valid and valid[0]["status"] == "False", policy
    assert "PolicyInvalid" in await app.reasons(app.policy) + await app.reasons(app.name)


async def test_no_promotion_while_prometheus_is_down(app_factory: Any, kube: Kube) -> None:
    prometheuses = (
        await kube.items("/apis/monitoring.coreos.com/v1/prometheuses")
        if await kube.get("/apis/monitoring.coreos.com/v1")
        else []
    )
    if not prometheuses:
        pytest.skip(
            "no prometheus-operator Prometheus to stop (hack/kind-up.sh installs kube-prometheus-stack)"
        )
    prom = prometheuses[0]
    path = f"/apis/monitoring.coreos.com/v1/namespaces/{prom['metadata']['namespace']}/prometheuses/{prom['metadata']['name']}"
    replicas = prom["spec"].get("replicas", 1)
    app: App = await app_factory()
    await onboarded(app)
    try:
        async with steady_load(app.settings.ingress, app.host):
            await app.release("2")
            rollout = f"{app.revision(2)}.1"
            await app.wait_phase(rollout, {"Progressing"}, 120)
            await kube.merge_patch(path, {"spec": {"replicas": 0}})
            await asyncio.sleep(90)  # well past every bake: without evidence nothing may be promoted
            held = await app.rollout(rollout)
            assert held is not None and held["status"]["phase"] in {"Progressing", "Paused"}, held
            await kube.merge_patch(path, {"spec": {"replicas": replicas}})
            done = await app.wait_phase(rollout, {"Succeeded", "RolledBack", "Failed"}, ROLLOUT + 120)
    finally:
        await kube.merge_patch(path, {"spec": {"replicas": replicas}})
    assert done["status"]["phase"] == "Succeeded", done["status"]
