"""The controller runs against the sandbox through the recording proxy, and what it asked the API server for
is compared with the chart's rules: every request must be allowed (resource names included), and every rule
must have been used by the scenario or have a call site in the code that names its resource.

The scenario touches every kind of call the controller makes: list+watch of all its kinds, onboarding of a
Service and of a standalone Route (traffic patches), a rollout to promotion (Rollout create, status patches,
Events, aggregated repeats of an Event), a policy whose Prometheus token comes from a Secret, a policy
status, history beyond `historyLimit` (delete), and leader election (Lease get/create/update, release)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import importlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout_lab.sandbox.store_api import ResourceType
from tests.chart.rbac import allowed, permissions, static_calls
from tests.chart.recorder import recording_proxy
from tests.chart.rendering import CHART_DIR, ROOT, Obj, render

NS = "default"
POLICY = {
    "strategy": {"canary": {"steps": [{"weight": 50, "bake": "3s"}]}},
    "analysis": {
        "interval": "1s",
        "noData": "pass",
        "minRequests": 0,
        "metrics": [{"name": "errors", "builtin": "errorRate", "threshold": {"max": 0.5}}],
    },
    # the admins' source, whose token Secret the controller reads (Secret get, ClusterMetricSource list/watch)
    "metricSource": {"ref": "prometheus"},
    "deadlines": {"candidateReady": "60s", "rollout": "5m"},
    "historyLimit": 1,
}


def _needs(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not in this checkout yet (the controller)")


async def eventually(
    check: Callable[[], Any], within: float, what: str, state: Callable[[], str] = str
) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {within}s (last: {value!r}) {state()}")
        await asyncio.sleep(0.1)


def _template(version: str) -> Obj:
    return {
        "metadata": {"annotations": {"app/version": version}},
        "spec": {"containers": [{"image": f"example.com/web:{version}"}]},
    }


@pytest.mark.slow
@pytest.mark.prometheus
async def test_every_request_of_the_controller_is_granted_and_every_grant_used() -> None:
    app = _needs("rollout.controller.app")
    client_mod = _needs("rollout.kube.client")
    controller_defaults = _needs("rollout.controller.rollouts").ControllerDefaults
    lease_settings = _needs("rollout.kube.leader").LeaseSettings

    from rollout_lab.sandbox.apiserver import kinds
    from rollout_lab.sandbox.environment import SandboxOptions, sandbox_environment
    from rollout_lab.sandbox.prometheus import find_prometheus

    try:
        find_prometheus()
    except Exception:
        pytest.skip("Debian's prometheus package is not installed (./scripts/ensure-prometheus)")

    policies = ResourceType("knrollout.dev", "v1alpha1", "rolloutpolicies", "RolloutPolicy")
    rollouts = ResourceType("knrollout.dev", "v1alpha1", "rollouts", "Rollout")
    options = SandboxOptions(
        ready_delay=0.3, cold_start=0.2, rps=20.0, seed=7, prometheus=True, scrape_interval=1.0
    )
    with tempfile.TemporaryDirectory(prefix="rbac-") as tmp:
        async with sandbox_environment(options) as env, recording_proxy(env.api.url) as proxy:
            store = env.store
            for path in sorted((CHART_DIR / "crds").glob("*.yaml")):
                store.create(kinds.CRDS, yaml.safe_load(path.read_text()))
            token = base64.b64encode(b"not-checked-by-the-local-prometheus").decode()
            store.create(
                kinds.SECRETS,
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "prometheus-reader", "namespace": NS},
                    "data": {"token": token},
                },
            )
            prometheus_url = env.prometheus.url if env.prometheus else "http://127.0.0.1:9"
            store.create(
                ResourceType(
                    "knrollout.dev",
                    "v1alpha1",
                    "clustermetricsources",
                    "ClusterMetricSource",
                    namespaced=False,
                ),
                {
                    "apiVersion": "knrollout.dev/v1alpha1",
                    "kind": "ClusterMetricSource",
                    "metadata": {"name": "prometheus"},
                    "spec": {
                        "prometheus": {
                            "address": prometheus_url,
                            "bearerToken": {"secretKeyRef": {"name": "prometheus-reader", "key": "token"}},
                        },
                        "secretNamespace": NS,
                    },
                },
            )
            store.create(
                policies,
                {
                    "apiVersion": "knrollout.dev/v1alpha1",
                    "kind": "RolloutPolicy",
                    "metadata": {"name": "fast", "namespace": NS},
                    "spec": POLICY,
                },
            )
            labels = {"knrollout.dev/policy": "fast"}
            store.create(
                kinds.KSERVICES,
                {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Service",
                    "metadata": {"name": "web", "namespace": NS, "labels": labels},
                    "spec": {"template": _template("1")},
                },
            )
            # a standalone Route over a Service that is not opted in itself
            store.create(
                kinds.KSERVICES,
                {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Service",
                    "metadata": {"name": "backend", "namespace": NS},
                    "spec": {"template": _template("1")},
                },
            )
            kubeconfig = proxy.write_kubeconfig(
                Path(tmp) / "kubeconfig", token=env.api.token or "sandbox", namespace=NS
            )

            client = await client_mod.KubeClient.connect(str(kubeconfig))
            config = app.ControllerConfig(
                workers=2,
                leader_elect=True,
                lease=lease_settings(namespace=NS, lease_duration=4.0, renew_deadline=3.0, retry_period=0.5),
                defaults=controller_defaults(prometheus_url=env.prometheus.url if env.prometheus else None),
                analysis_settle=0.3,
            )
            controller = app.Controller(client, config)

            def service(name: str) -> Obj:
                obj = store.get(kinds.KSERVICES, NS, name)
                assert obj is not None, name
                return dict(obj)

            def pinned(name: str, rt: Any = kinds.KSERVICES) -> bool:
                traffic = (store.get(rt, NS, name) or {}).get("spec", {}).get("traffic") or []
                return any(e.get("tag") == "stable" and e.get("percent") == 100 for e in traffic)

            def state() -> str:
                policy = store.get(policies, NS, "fast") or {}
                items, _ = store.list(rollouts, NS)
                return f"policy status {policy.get('status')}; rollouts {[(r['metadata']['name'], r.get('status', {}).get('phase'), r.get('status', {}).get('message')) for r in items]}; web {service('web').get('status', {}).get('latestReadyRevisionName')}"

            def finished() -> list[str]:
                items, _ = store.list(rollouts, NS)
                return [
                    r["metadata"]["name"] for r in items if r.get("status", {}).get("phase") == "Succeeded"
                ]

            def new_revision(name: str, version: str) -> None:
                for _ in range(10):
                    obj = copy.deepcopy(service(name))
                    obj.pop("status", None)
                    obj["spec"]["template"] = _template(version)
                    with contextlib.suppress(Exception):
                        store.update(kinds.KSERVICES, obj)
                        return
                raise AssertionError("could not update the Service")

            try:
                async with app.running(controller):
                    await eventually(lambda: pinned("web"), 20, "web pinned")
                    # two rollouts to promotion: with historyLimit 1 the first one is deleted
                    new_revision("web", "2")
                    await eventually(lambda: len(finished()) >= 1, 60, "first rollout promoted", state)
                    new_revision("web", "3")
                    await eventually(
                        lambda: finished() and "web-00003" in " ".join(finished()),
                        60,
                        "second rollout promoted",
                    )
                    # someone rewrites traffic twice: the same drift Event repeats (aggregated by a patch)
                    for _ in range(2):
                        obj = copy.deepcopy(service("web"))
                        obj.pop("status", None)
                        obj["spec"]["traffic"] = [{"latestRevision": True, "percent": 100}]
                        store.update(kinds.KSERVICES, obj)
                        await eventually(lambda: pinned("web"), 20, "drift corrected")
                    # the next reconcile trims finished rollouts beyond historyLimit
                    await eventually(
                        lambda: len(store.list(rollouts, NS)[0]) == 1, 20, "history trimmed to 1", state
                    )
                    # a standalone Route over a Service that is not opted in itself
                    await eventually(
                        lambda: (service("backend").get("status") or {}).get("latestReadyRevisionName"),
                        10,
                        "backend ready",
                    )
                    store.create(
                        kinds.ROUTES,
                        {
                            "apiVersion": "serving.knative.dev/v1",
                            "kind": "Route",
                            "metadata": {"name": "backend-split", "namespace": NS, "labels": labels},
                            "spec": {"traffic": [{"configurationName": "backend", "percent": 100}]},
                        },
                    )
                    await eventually(
                        lambda: pinned("backend-split", kinds.ROUTES), 20, "standalone Route pinned"
                    )
            finally:
                await client.close()

    rules = [
        rule
        for o in render({"replicas": 2, "rbac": {"readSecrets": True}})
        if o["kind"] in {"Role", "ClusterRole"}
        for rule in o["rules"]
    ]
    requests = proxy.recording.requests
    assert requests, "nothing recorded"
    denied = sorted({f"{r.verb} {r.group}/{r.resource} {r.name}" for r in requests if not allowed(rules, r)})
    assert denied == [], f"the chart denies calls the controller made: {denied}"
    # a grant the scenario did not use must at least have a call site in the code (rare paths: an Event
    # repeated, a Rollout that already exists, ...); otherwise nothing needs it
    resources = importlib.import_module("rollout.kube.resources")
    constants = {
        k: (v.group, v.plural) for k, v in vars(resources).items() if isinstance(v, resources.Resource)
    }
    in_code = static_calls(ROOT / "rollout", constants)
    unjustified = sorted(permissions(rules) - proxy.recording.permissions - set(in_code))
    assert unjustified == [], f"the chart grants calls the controller never makes: {unjustified}"
