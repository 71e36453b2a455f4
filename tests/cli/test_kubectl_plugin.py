"""`kubectl knrollout`: real kubectl (Debian's kubernetes-client) finds the plugin on its PATH and runs
list, status and promote against the sandbox with a running controller."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from rollout.cli.listing import newest_per_target, rollout_rows
from tests.integration.harness import controller, eventually, onboard, phase_of, sandbox

KUBECTL = shutil.which("kubectl")
PLUGIN_DIR = Path(sys.executable).parent  # where pip put kubectl-knrollout beside rollout
GATED: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"pause": {}}, {"weight": 50}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    assert KUBECTL is not None
    env = {**os.environ, "PATH": f"{PLUGIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, *args, f"--kubeconfig={kubeconfig}", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
@pytest.mark.skipif(not (PLUGIN_DIR / "kubectl-knrollout").exists(), reason="the package is not installed")
async def test_kubectl_knrollout_lists_shows_and_promotes() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", GATED)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=20)
            code, out, err = await kubectl(cluster.kubeconfig, "knrollout", "list", "-A")
            assert code == 0, err
            header, row = out.splitlines()[0].split(), out.splitlines()[1].split()
            assert header[:4] == ["NAMESPACE", "TARGET", "ROLLOUT", "PHASE"]
            assert row[:5] == ["default", "hello", "hello-00002.1", "Paused", "(Gate)"]
            code, out, err = await kubectl(
                cluster.kubeconfig, "knrollout", "status", "hello", "-n", "default"
            )
            assert (
                code == 0
                and out.startswith("Paused at step 2/3 with the candidate at")
                and "manual gate" in out.splitlines()[0]
            ), (out, err)
            code, out, err = await kubectl(cluster.kubeconfig, "knrollout", "promote", "hello", "--wait")
            assert code == 0 and "done: phase" in out, (out, err)
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Succeeded", within=20)
            # who asked is who the API server authenticated (the sandbox's token is its admin), not the OS user
            done = cluster.rollout("hello-00002.1")
            assert done is not None and done.status.requests[-1].requested_by == "sandbox-admin"
            code, out, err = await kubectl(cluster.kubeconfig, "knrollout", "status", "hello")
            request_row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["promote"])
            assert request_row[:3] == ["promote", "sandbox-admin", "Applied"], out
            code, out, err = await kubectl(cluster.kubeconfig, "knrollout", "controller")
            assert code == 2 and "invalid choice: 'controller'" in err
            # undo the promotion: the previous stable serves 100% again, and holds until a new revision
            code, out, err = await kubectl(cluster.kubeconfig, "knrollout", "undo", "hello", "--wait")
            assert code == 0 and "done: phase Undone" in out, (out, err)

            def stable_alone() -> bool:
                live = [
                    (e.get("revisionName"), e.get("tag"), e["percent"])
                    for e in cluster.spec_traffic("hello")
                    if e.get("percent")
                ]
                return live == [("hello-00001", "stable", 100)]

            await eventually(stable_alone, within=10)
            code, out, err = await kubectl(cluster.kubeconfig, "knrollout", "status", "hello")
            assert out.startswith("Undone: undo requested by sandbox-admin: hello-00001 serves 100%"), out
            cluster.new_revision("hello", "ghcr.io/acme/hello:v3")
            await eventually(lambda: cluster.rollout("hello-00003.1") is not None, within=20)
            fresh = cluster.rollout("hello-00003.1")
            assert fresh is not None and fresh.spec.stable_revision == "hello-00001"


def test_the_table_shows_each_targets_newest_rollout() -> None:
    from datetime import UTC, datetime

    from tests.engine.world import make_rollout

    first = make_rollout(GATED)
    newer = first.model_copy(update={"metadata": first.metadata.model_copy(update={"name": "hello-00003.1"})})
    shown = newest_per_target([first, newer])
    assert [r.metadata.name for r in shown] == ["hello-00003.1"]
    rows = rollout_rows(shown, datetime.now(UTC), namespaces=False)
    assert rows[0] == ["TARGET", "ROLLOUT", "PHASE", "STEP", "STABLE/CANARY", "VERDICTS", "AGE"]
    assert rows[1][:3] == ["hello", "hello-00003.1", "Pending"]


async def test_the_requester_is_the_identity_the_api_server_authenticated(tmp_path: Path) -> None:
    import yaml

    from rollout.cli.kubeaccess import api_client, requester
    from rollout_lab.sandbox.apiserver import SandboxApiServer
    from rollout_lab.sandbox.apiserver.rbac import UserInfo

    async with SandboxApiServer(
        token="admin", users={"alice-token": UserInfo("alice", groups=("devs",))}
    ) as srv:
        admin = srv.write_kubeconfig(tmp_path / "admin")
        async with api_client(str(admin), None) as api:
            assert await requester(api) == "sandbox-admin"
        config = yaml.safe_load(admin.read_text())
        config["users"][0]["user"]["token"] = "alice-token"
        (tmp_path / "alice").write_text(yaml.safe_dump(config))
        async with api_client(str(tmp_path / "alice"), None) as api:
            assert await requester(api) == "alice"
