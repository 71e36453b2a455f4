"""`rollout controller` with the commonest setup mistakes: one line naming the problem and the fix, a
non-zero exit, never a traceback (a real process, as an operator runs it)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from rollout_lab.sandbox.environment import SandboxOptions, sandbox_environment
from tests.cli.test_bad_inputs import busy_port

UNREACHABLE = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
users: [{name: u, user: {token: abc}}]
"""


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rollout.cli.main", "controller", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def expect(code: int, out: str, want_code: int, *needles: str) -> None:
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == want_code and lines, (code, out)
    assert all(n in lines[-1] for n in needles), lines[-1]


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["--kubeconfig", "/nonexistent"], 1, ["--kubeconfig /nonexistent: no such file"]),
        (["--kubeconfig", "BAD_YAML"], 1, ["not a YAML kubeconfig"]),
        (["--kubeconfig", "UNREACHABLE"], 1, ["cannot reach the API server", "check --kubeconfig"]),
        (["--metrics-addr", "127.0.0.1:99999"], 2, ["--metrics-addr", "up to 65535"]),
        (["--metrics-addr", "BUSY"], 1, ["already in use", "pick another port"]),
        (["--workers", "-1"], 2, ["--workers", "at least 1"]),
        (["--prometheus-url", "not-a-url"], 2, ["--prometheus-url", "http://prometheus.monitoring:9090"]),
        (["--resync", "5"], 2, ["--resync", "not a duration"]),
        ([], 1, ["cannot load a cluster configuration", "pass --kubeconfig"]),
    ],
)
async def test_a_setup_mistake_is_one_line_and_an_exit_code(
    args: list[str], code: int, needles: list[str], tmp_path: Path
) -> None:
    bad, unreachable = tmp_path / "bad.yaml", tmp_path / "unreachable.yaml"
    bad.write_text("clusters: [unclosed\n")
    unreachable.write_text(UNREACHABLE)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no KUBECONFIG, no ~/.kube, not in a pod
    with busy_port() as port:
        given = [
            {"BAD_YAML": str(bad), "UNREACHABLE": str(unreachable), "BUSY": f"127.0.0.1:{port}"}.get(a, a)
            for a in args
        ]
        if args and "--kubeconfig" not in args:  # the flag's check comes first, or the cluster's would fail
            given += ["--kubeconfig", str(unreachable)]
        result = await run(*given, env=env)
    expect(*result, code, *needles)


async def test_a_cluster_without_our_crds_is_named_with_the_command_that_installs_them(
    tmp_path: Path,
) -> None:
    async with sandbox_environment(SandboxOptions(seed=1)) as env:  # the project's CRDs not installed
        kubeconfig = env.api.write_kubeconfig(tmp_path / "kubeconfig")
        result = await run("--kubeconfig", str(kubeconfig), "--metrics-addr", "127.0.0.1:0")
    expect(*result, 1, "does not serve rollouts.knrollout.dev/v1alpha1", "rollout crds | kubectl apply -f -")
