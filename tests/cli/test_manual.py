"""`rollout status` and the manual actions, run as a user would (the CLI's own kubeconfig client) against the
sandbox with the controller running."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rollout.api.rollout import Phase
from rollout.cli.main import main
from tests.integration.harness import controller, eventually, finished, onboard, phase_of, sandbox

GATED: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"pause": {}}, {"weight": 50}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_status_resume_abort_retry_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    async with sandbox() as cluster:
        kc = str(cluster.kubeconfig)
        cluster.apply_policy("canary", GATED)
        async with controller(cluster):
            await onboard(cluster, "hello")
            code, _, err = await cli(capsys, "pause", "hello", "--kubeconfig", kc)
            assert code == 1 and "has no running Rollout" in err
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)

            code, out, _ = await cli(capsys, "status", "hello", "--kubeconfig", kc)
            assert code == 0
            assert "Phase:      Paused (ManualGate)" in out
            assert "stable hello-00001 -> candidate hello-00002" in out
            assert "canary 20%" in out and "Step:       2/3" in out

            code, out, _ = await cli(
                capsys, "resume", "hello", "--kubeconfig", kc, "--wait", "--reason", "looks ok"
            )
            assert code == 0 and "done: phase Progressing" in out
            rollout = cluster.rollout("hello-00002.1")
            assert rollout is not None and rollout.spec.request is not None
            assert rollout.spec.request.reason == "looks ok" and rollout.spec.request.requested_by

            code, out, _ = await cli(capsys, "abort", "hello", "--kubeconfig", kc, "--wait")
            assert code == 0 and "done: phase Aborted" in out
            code, out, _ = await cli(capsys, "retry", "hello", "--kubeconfig", kc, "--wait")
            assert code == 0
            second = await eventually(lambda: phase_of(cluster, "hello-00002.2") is not None, within=15)
            assert second

            code, out, _ = await cli(capsys, "status", "hello", "--kubeconfig", kc, "-o", "json")
            assert code == 0 and '"attempt": 2' in out.replace('"attempt":2', '"attempt": 2')
            code, out, _ = await cli(capsys, "promote", "hello", "--kubeconfig", kc, "--wait")
            assert code == 0
            done = await eventually(lambda: finished(cluster, "hello-00002.2"), within=15)
            assert done.status.phase == Phase.SUCCEEDED

            code, out, _ = await cli(capsys, "status", "hello", "--kubeconfig", kc)
            assert "HISTORY" in out and "hello-00002.1" in out and "Aborted" in out
            assert "Events:" in out and "Promoted" in out
            events = out.split("Events:", 1)[1].strip().splitlines()
            assert len(events) == len(set(events)), events  # an end recorded on both objects shows once


async def test_unreachable_cluster_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    code, _, err = await cli(capsys, "status", "hello", "--kubeconfig", str(tmp_path / "missing"))
    assert code == 1 and "kubeconfig" in err


async def test_mistakes_get_one_line_that_says_what_is_wrong(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: [unclosed\n")
    for argv, needle in (
        (["status", "hello", "--kubeconfig", "/nonexistent"], "--kubeconfig /nonexistent: no such file"),
        (["promote", "hello", "--kubeconfig", str(bad)], "the kubeconfig is not YAML"),
    ):
        code, out, err = await cli(capsys, *argv)
        assert code == 1 and err.strip().count("\n") == 0 and needle in err, err
        assert "Traceback" not in out + err
    async with sandbox() as cluster:
        kc = str(cluster.kubeconfig)
        cluster.apply_policy("canary", GATED)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.create_service("plain", policy=None)
            for argv, needle in (
                (["status", "nosuch"], "Service default/nosuch not found"),
                (["status", "hello", "-n", "nowhere"], "namespace nowhere does not exist"),
                (["status", "plain"], "does not opt in: label it knrollout.dev/policy=<policy>"),
                (["status", "hello"], "has no Rollout yet; is the controller running?"),
            ):
                code, _, err = await cli(capsys, *argv, "--kubeconfig", kc)
                assert code == 1 and needle in err, (argv, err)
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)
            cluster.request("hello-00002.1", "resume", request_id="r1")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Progressing", within=15)
            before = cluster.rollout("hello-00002.1")
            code, _, err = await cli(capsys, "resume", "hello", "--kubeconfig", kc)
            assert code == 1 and "resume does not apply" in err and "nothing was sent" in err, err
            after = cluster.rollout("hello-00002.1")
            assert before is not None and after is not None and after.spec.request == before.spec.request
