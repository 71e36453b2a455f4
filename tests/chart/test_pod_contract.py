"""The controller process as the chart runs it: the image's entrypoint (`rollout controller`) with the
rendered Deployment's args, against the sandbox API server. The probes' paths answer on the probes' port,
the `helm test` pod's check passes, the replica takes the Lease the chart grants, /metrics serves what the
alerts read, and SIGTERM ends it well within terminationGracePeriodSeconds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.chart.promtool import free_port
from tests.chart.rendering import NAMESPACE, controller, crds, render


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def _until(url: str, within: float) -> tuple[int, str]:
    deadline = time.monotonic() + within
    last: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        try:
            last = await asyncio.to_thread(_get, url)
        except OSError as error:
            last = (0, str(error))
        if last[0] == 200:
            return last
        await asyncio.sleep(0.2)
    return last


# (values, the pod's name as its workload names it, the Lease it must take, what /metrics says of it)
PODS = [
    ({"replicas": 2}, "kr-knative-rollout-7d9f8-abc12", "knative-rollout-controller", "knrollout_leader 1.0"),
    (  # pod 1 of the StatefulSet: the home of shard 1
        {"sharding": {"shards": 3}},
        "kr-knative-rollout-1",
        "knative-rollout-controller-shard-1",
        'knrollout_shard_held{shard="1"} 1.0',
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("values", "pod", "lease_name", "held"), PODS, ids=["replicas", "sharded"])
async def test_the_pod_as_the_chart_runs_it(
    values: dict[str, object], pod: str, lease_name: str, held: str
) -> None:
    from rollout_lab.sandbox.apiserver import kinds
    from rollout_lab.sandbox.apiserver.server import SandboxApiServer

    objs = render(values)
    c = controller(objs)
    port = free_port()
    args = [a if not a.startswith("--metrics-addr=") else f"--metrics-addr=127.0.0.1:{port}" for a in c.args]
    probes = {name: c.container[name]["httpGet"]["path"] for name in ("livenessProbe", "readinessProbe")}
    grace = c.pod["terminationGracePeriodSeconds"]

    async with SandboxApiServer() as server:
        server.store.create(
            kinds.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        )
        for crd in crds():  # what Helm installs from crds/ before the Deployment
            server.store.create(kinds.CRDS, crd)
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
            env = {**os.environ, "POD_NAME": pod, "POD_NAMESPACE": NAMESPACE}
            log = Path(tmp) / "controller.log"
            with log.open("wb") as sink:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "rollout.cli.main",
                    "controller",
                    f"--kubeconfig={kubeconfig}",
                    *args,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            try:
                base = f"http://127.0.0.1:{port}"
                for path in probes.values():
                    status, body = await _until(base + path, within=30)
                    assert status == 200, f"{path}: {status} {body}"
                deadline = time.monotonic() + 15
                while (lease := server.store.get(kinds.LEASES, NAMESPACE, lease_name)) is None:
                    assert time.monotonic() < deadline, f"no Lease {lease_name} in the release namespace"
                    await asyncio.sleep(0.1)
                assert lease["spec"]["holderIdentity"].startswith(pod)
                status, metrics = await asyncio.to_thread(_get, base + "/metrics")
                assert status == 200 and held in metrics, metrics[-2000:]
                started = time.monotonic()
                process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(process.wait(), grace)
                stopped_in = time.monotonic() - started
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            output = log.read_text()
            assert code == 0, output[-2000:]
            assert stopped_in < grace / 2, f"took {stopped_in:.1f}s of a {grace}s grace period"
            # logs are JSON lines in the cluster (--log-format=json)
            lines = [line for line in output.splitlines() if line.strip()]
            assert lines and all(json.loads(line) for line in lines), lines[:3]
            released = server.store.get(kinds.LEASES, NAMESPACE, lease_name)
            assert released is not None and not released["spec"].get("holderIdentity")
