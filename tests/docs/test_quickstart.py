"""docs/quickstart.md, run as written: the sandbox with the controller in the background, then each block
of commands in one shell, from the repository's root. The one change: the kubeconfig goes to a temporary
directory instead of /tmp/quickstart.kubeconfig, so that the test never overwrites a reader's file."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
from pathlib import Path

import pytest

from tests.integration.harness import NEEDS_PROMETHEUS

pytestmark = [
    *NEEDS_PROMETHEUS,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (Debian's kubernetes-client)"),
    pytest.mark.timeout(300),
]
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r"<!-- quickstart(:background)? -->\n```sh\n(.*?)```", re.S)
KUBECONFIG = "/tmp/quickstart.kubeconfig"


def blocks(text: str) -> tuple[str, list[str]]:
    """The background command and the foreground blocks, in order."""
    background = [b for kind, b in BLOCK.findall(text) if kind]
    foreground = [b for kind, b in BLOCK.findall(text) if not kind]
    assert len(background) == 1 and foreground, "docs/quickstart.md lost its marked command blocks"
    return background[0].strip(), foreground


async def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    text = DOC.read_text().replace(KUBECONFIG, str(tmp_path / "kubeconfig"))
    background, foreground = blocks(text)
    sandbox = await asyncio.create_subprocess_shell(
        f"exec {background}", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert sandbox.stdout is not None
    try:
        while b"running; Ctrl-C stops" not in (
            line := await asyncio.wait_for(sandbox.stdout.readline(), 120)
        ):
            assert line, "the sandbox exited before it was running"
        drain = asyncio.create_task(sandbox.stdout.read())  # keep its pipe from filling up
        script = "set -euo pipefail\n" + "\n".join(foreground)
        shell = await asyncio.create_subprocess_exec(
            "bash", "-c", script, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(shell.communicate(), 240)
        output = out.decode()
        assert shell.returncode == 0, output[-3000:]
        assert "Promoted: revision quickstart-00002 serves 100% and is the new stable" in output, output[
            -3000:
        ]
        assert re.search(
            r"Rolled back: canary error-rate \d+\.\d\d% vs stable \d+\.\d\d% \(max 5\.00%\)", output
        )
        assert "quickstart-00003.1" in output  # kubectl get rollouts lists the second rollout
    finally:
        sandbox.send_signal(signal.SIGTERM)
        await asyncio.wait_for(sandbox.wait(), 30)
        if "drain" in locals():
            await drain
