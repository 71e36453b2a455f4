"""`rollout sandbox` as users run it: a subprocess that prints where things are, serves kubernetes-asyncio
and kubectl, exposes traffic metrics, and stops cleanly on SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


async def start_sandbox(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rollout.cli.main", "sandbox", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    printed: dict[str, str] = {}
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line, (
            f"sandbox exited early: {(await process.stderr.read()).decode() if process.stderr else ''}"
        )
        if line.startswith("running"):
            return process, printed
        key, _, value = line.partition(":")
        if value.strip():
            printed.setdefault(key.strip(), value.strip().split()[0])


async def stop(process: asyncio.subprocess.Process, signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    out, _ = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode is not None
    return process.returncode, out.decode()


def is_file(path: Path) -> bool:
    return path.is_file()


SERVICE = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "hello", "namespace": "default"},
    "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/acme/hello:v1"}]}}},
}


async def test_sandbox_serves_clients_and_metrics_then_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process, printed = await start_sandbox(
        "--kubeconfig", str(kubeconfig), "--rps", "50", "--ready-delay", "500ms"
    )
    try:
        assert printed["kubeconfig"] == str(kubeconfig) and is_file(kubeconfig)
        assert printed["api server"].startswith("http://127.0.0.1:")
        assert printed["metrics"].endswith("/metrics")
        loader = config.new_client_from_config(config_file=str(kubeconfig))
        async with await loader as api_client:
            objects = client.CustomObjectsApi(api_client)
            await objects.create_namespaced_custom_object(
                "serving.knative.dev", "v1", "default", "services", SERVICE
            )
            deadline = time.monotonic() + 10
            while True:
                ksvc = await objects.get_namespaced_custom_object(
                    "serving.knative.dev", "v1", "default", "services", "hello"
                )
                ready = [c for c in ksvc.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
                if ready and ready[0]["status"] == "True":
                    break
                assert time.monotonic() < deadline, ksvc.get("status")
                await asyncio.sleep(0.1)
            bad = dict(ksvc, spec={**ksvc["spec"], "traffic": [{"latestRevision": True, "percent": 50}]})
            with pytest.raises(ApiException) as caught:
                await objects.replace_namespaced_custom_object(
                    "serving.knative.dev", "v1", "default", "services", "hello", bad
                )
            assert caught.value.status == 400
            assert "Traffic targets sum to 50, want 100: spec.traffic" in str(caught.value.body)
        await asyncio.sleep(1.0)
        async with aiohttp.ClientSession() as session, session.get(printed["metrics"]) as response:
            text = await response.text()
        assert 'revision_request_count{namespace_name="default",service_name="hello"' in text
        if shutil.which("kubectl"):
            kubectl = await asyncio.create_subprocess_exec(
                "kubectl", "get", "revisions", "-n", "default", "-o", "name",
                env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            listed, _ = await asyncio.wait_for(kubectl.communicate(), 20)
            assert listed.decode().split() == ["revision.serving.knative.dev/hello-00001"]
    finally:
        code, out = await stop(process, signal.SIGTERM)
    assert code == 0
    assert "sandbox stopped" in out
    assert is_file(kubeconfig)  # the user's file stays


async def test_sandbox_stops_on_ctrl_c_and_removes_its_temporary_kubeconfig() -> None:
    process, printed = await start_sandbox("--rps", "1")
    kubeconfig = Path(printed["kubeconfig"])
    assert is_file(kubeconfig)
    code, out = await stop(process, signal.SIGINT)
    assert code == 0 and "sandbox stopped" in out
    assert not is_file(kubeconfig)


async def kubectl(kubeconfig: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, out.decode()
    return out.decode()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (Debian's kubernetes-client)")
async def test_sandbox_with_the_controller_runs_the_commands_it_prints(tmp_path: Path) -> None:
    """One command to a working local setup: the CRDs and the namespace are there, the controller runs,
    and the next commands it prints (apply the example, make a new revision) start a rollout."""
    kubeconfig = tmp_path / "kubeconfig"
    process, printed = await start_sandbox(
        "--kubeconfig", str(kubeconfig), "--controller", "--ready-delay", "300ms", "--cold-start", "200ms"
    )
    try:
        assert printed["namespace"] == "demo" and printed["controller"] == "running"
        assert "No resources found in demo namespace" in await kubectl(kubeconfig, "get", "rollouts")
        await kubectl(kubeconfig, "apply", "-f", str(ROOT / "examples" / "hello"))
        deadline = time.monotonic() + 20
        while '"stable"' not in await kubectl(
            kubeconfig, "get", "ksvc", "hello", "-o", "jsonpath={.spec.traffic}"
        ):
            assert time.monotonic() < deadline, "the controller did not pin the example's Service"
            await asyncio.sleep(0.3)
        patch = (
            '{"spec":{"template":{"metadata":{"annotations":{"sandbox.knrollout.dev/error-rate":"0.3"}}}}}'
        )
        await kubectl(kubeconfig, "patch", "ksvc", "hello", "--type", "merge", "-p", patch)
        while "hello-00002.1" not in await kubectl(kubeconfig, "get", "rollouts"):
            assert time.monotonic() < deadline + 20, "no Rollout for the new revision"
            await asyncio.sleep(0.3)
    finally:
        code, _ = await stop(process, signal.SIGTERM)
    assert code == 0
