"""The end-to-end suite's cluster: found (or every test skipped with the reason), the chart installed with
Helm's Go SDK (helm-python-sdk) as release `kr-e2e`, two replicas with leader election, namespace-scoped to
the apps namespace, and removed again at the end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.e2e.apps import App
from tests.e2e.cluster import Kube, Settings, probe, settings_from
from tests.e2e.workload import policy

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "knative-rollout"
RELEASE = "kr-e2e"
RELEASE_NS = "kr-e2e"
APPS_NS = "kr-e2e-apps"
POLICY = "e2e-canary"


async def _prepare(settings: Settings) -> dict[str, Any]:
    """Checks that need the API: Knative present, no other knative-rollout acting cluster-wide, whether
    prometheus-operator's kinds exist. Then a fresh apps namespace."""
    reason = await probe(settings.kubeconfig)
    if reason is not None:
        return {"skip": reason}
    kube = await Kube.connect(settings.kubeconfig)
    try:
        others = await kube.items(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=app.kubernetes.io/part-of=knative-rollout"
        )
        if others:
            names = ", ".join(o["metadata"]["name"] for o in others)
            return {
                "skip": f"a cluster-wide knative-rollout is installed ({names}): uninstall it so that the e2e "
                "controller is the only one acting on the test namespace"
            }
        operator = await kube.get("/apis/monitoring.coreos.com/v1") is not None
        await kube.delete(f"/api/v1/namespaces/{APPS_NS}")
        for _ in range(120):
            if await kube.get(f"/api/v1/namespaces/{APPS_NS}") is None:
                break
            await asyncio.sleep(1)
        await kube.create(
            "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}}
        )
        return {"operator": operator}
    finally:
        await kube.close()


def values(settings: Settings, operator: bool) -> dict[str, Any]:
    repository, _, tag = settings.image.rpartition(":")
    return {
        "replicas": 2,
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "rbac": {"scope": "namespaced"},
        "watchNamespaces": [APPS_NS],
        "controller": {"logFormat": "json"},
        "metricSource": {"prometheusUrl": settings.prometheus_url, "dialect": settings.dialect},
        "serviceMonitor": {"enabled": operator},
        "prometheusRule": {"enabled": operator},
        "queueProxyMonitor": {"enabled": operator, "namespaces": [APPS_NS], "interval": "5s"},
    }


@pytest.fixture(scope="session")
def e2e() -> Iterator[Settings]:
    found = settings_from(os.environ, Path.home())
    if isinstance(found, str):
        pytest.skip(found)
    settings = found
    if not settings.ingress_is_loopback:
        pytest.skip(
            f"E2E_INGRESS={settings.ingress} is not a loopback address; the suite sends load only to 127.0.0.1"
        )
    prepared = asyncio.run(_prepare(settings))
    if "skip" in prepared:
        pytest.skip(prepared["skip"])
    config = helm.Config(kubeconfig_path=settings.kubeconfig, namespace=RELEASE_NS)
    config.uninstall(RELEASE, wait="watcher", timeout=120, ignore_not_found=True)  # an earlier run's
    config.install(
        helm.Chart.load(CHART_DIR),
        RELEASE,
        values(settings, prepared["operator"]),
        namespace=RELEASE_NS,
        create_namespace=True,
        wait="watcher",
        timeout=300,
    )
    try:
        yield settings
    finally:
        config.uninstall(RELEASE, wait="watcher", timeout=300)
        config.close()


@pytest.fixture
async def kube(e2e: Settings) -> AsyncIterator[Kube]:
    client = await Kube.connect(e2e.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def app_factory(e2e: Settings, kube: Kube, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """Makes Services named after the test (and their policy); deletes them afterwards."""
    made: list[App] = []
    policies: list[str] = []

    async def make(suffix: str = "", policy_name: str = POLICY, **policy_overrides: Any) -> App:
        name = (request.node.name.removeprefix("test_").replace("_", "-")[:40] + suffix).strip("-")
        pname = f"{policy_name}-{name}"[:63]
        body = policy(pname, APPS_NS, e2e.dialect, **policy_overrides)
        await kube.create(f"/apis/knrollout.dev/v1alpha1/namespaces/{APPS_NS}/rolloutpolicies", body)
        policies.append(pname)
        made.append(App(kube, e2e, APPS_NS, name, pname))
        return made[-1]

    yield make
    for app in made:
        await kube.delete(app.path)
    for name in policies:
        await kube.delete(f"/apis/knrollout.dev/v1alpha1/namespaces/{APPS_NS}/rolloutpolicies/{name}")
