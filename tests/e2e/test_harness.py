"""The end-to-end suite's own parts, checked here where no cluster is: when it runs or skips and why, the
cluster probe (against the sandbox API server, which serves Knative's API group, and against a closed port),
the workload server's error rate and latency, and the manifests it deploys. Not marked e2e: these run
everywhere."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from rollout.api.policy import RolloutPolicy
from tests.chart.gitops import knative_crds
from tests.chart.promtool import free_port
from tests.chart.rendering import chart, crds
from tests.chart.validation import validate
from tests.e2e.cluster import Settings, kubeconfig_path, probe, settings_from
from tests.e2e.conftest import APPS_NS, values
from tests.e2e.traffic import steady_load
from tests.e2e.workload import SERVER, policy, service
from tests.local_http import serving


def test_without_a_kubeconfig_the_suite_says_why_it_skips(tmp_path: Path) -> None:
    reason = settings_from({}, tmp_path)
    assert isinstance(reason, str) and "no kubeconfig" in reason


def test_kubeconfig_is_found_like_kubectl_finds_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("{}")
    listed = tmp_path / "listed"
    listed.write_text("{}")
    assert kubeconfig_path({}, home) == home / ".kube" / "config"
    assert kubeconfig_path({"KUBECONFIG": f"{tmp_path / 'missing'}{os.pathsep}{listed}"}, home) == listed
    settings = settings_from({"KUBECONFIG": str(listed), "E2E_INGRESS": "http://10.0.0.5:80"}, home)
    assert isinstance(settings, Settings)
    assert not settings.ingress_is_loopback  # the fixture refuses to send load there


def _kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "sandbox"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_probe_accepts_an_api_server_with_knative(tmp_path: Path) -> None:
    from rollout_lab.sandbox.apiserver.server import SandboxApiServer

    async with SandboxApiServer() as server:
        assert await probe(_kubeconfig(tmp_path / "kc", server.url)) is None


async def test_probe_explains_a_cluster_without_knative_or_unreachable(tmp_path: Path) -> None:
    from rollout_lab.sandbox.apiserver.catalog import default_registry
    from rollout_lab.sandbox.apiserver.server import SandboxApiServer
    from rollout_lab.sandbox.apiserver.store import MemoryStore

    async with SandboxApiServer(MemoryStore(default_registry(knative=False))) as server:
        reason = await probe(_kubeconfig(tmp_path / "kc", server.url))
    assert reason is not None and "no Knative Serving" in reason
    closed = f"http://127.0.0.1:{free_port()}"
    reason = await probe(_kubeconfig(tmp_path / "kc2", closed), within=3)
    assert reason is not None and "not reachable" in reason


def _get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            return response.status, time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, time.monotonic() - started


def test_workload_serves_the_error_rate_and_latency_it_is_told() -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "ERROR_RATE": "0.5", "LATENCY_MS": "20", "VERSION": "7"}
    process = subprocess.Popen([sys.executable, "-c", SERVER], env=env)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                assert time.monotonic() < deadline, "the workload did not start"
                time.sleep(0.05)
        answers = [_get(f"http://127.0.0.1:{port}/") for _ in range(200)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    errors = sum(1 for code, _ in answers if code == 500)
    assert {code for code, _ in answers} == {200, 500}
    assert 60 <= errors <= 140  # 50% of 200, far outside binomial noise
    assert min(seconds for _, seconds in answers) >= 0.02


def test_workload_crashes_when_told_to() -> None:
    env = {**os.environ, "CRASH": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SERVER], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode != 0 and "crashing on purpose" in result.stderr


def test_deployed_manifests_are_valid() -> None:
    svc = service("shop", APPS_NS, "dev.local/knative-rollout:0.1.0", policy="p", version="2", error_rate=0.3)
    validate(svc, knative_crds())
    pol = policy("p", APPS_NS, "knative-otel")
    validate(pol, crds())
    RolloutPolicy.model_validate(pol)
    invalid = policy("p", APPS_NS, "knative-otel", strategy={"canary": {"stepWeight": 10}})
    validate(invalid, crds())  # the API server accepts it ...
    with pytest.raises(ValueError, match="maxWeight"):
        RolloutPolicy.model_validate(invalid)  # ... the controller does not


def test_install_values_pass_the_chart_schema() -> None:
    settings = Settings(
        Path("kc"),
        "dev.local/knative-rollout:0.1.0",
        "http://127.0.0.1:8080",
        "d",
        "http://p:9090",
        "knative-otel",
    )
    for operator in (True, False):
        chart().validate_schema(values(settings, operator))


async def test_steady_load_tags_the_share_of_requests_it_is_told() -> None:
    seen: list[tuple[str, str | None]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.headers["Host"], request.headers.get("Knative-Serving-Tag")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", record)
    async with (
        serving(app) as url,
        steady_load(url, "app.example.com", rps=200, max_seconds=0.5, tagged=("preview", 0.25)) as report,
    ):
        await asyncio.sleep(0.8)
    # (a request still in flight when the load stops is cancelled: it may be seen by the server, not counted)
    assert 40 <= report.sent <= 101 and len(seen) - 2 <= report.codes["200"] <= len(seen)
    assert {host for host, _ in seen} == {"app.example.com"}
    tags = [tag for _, tag in seen]
    assert set(tags) == {None, "preview"}
    assert abs(tags.count("preview") - 0.25 * len(tags)) <= 2
