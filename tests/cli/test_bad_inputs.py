"""Every command with the commonest mistakes: one line naming the flag or the problem, a non-zero exit code,
never a traceback (the controller's start-up checks have their own table in test_controller_startup.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


CASES: list[tuple[list[str], int, str]] = [
    (["sandbox", "--port", "99999"], 2, "--port: expected a port from 0 to 65535"),
    (["sandbox", "--port", "BUSY"], 1, "a port is already in use"),
    (["sandbox", "--metrics-port", "BUSY"], 1, "a port is already in use"),
    (["sandbox", "--rps", "-5"], 2, "--rps: expected a number of at least 0"),
    (["sandbox", "--kubeconfig", "/proc/nope/kubeconfig"], 1, "No such file or directory"),
    (["demo", "--rps", "-1"], 2, "--rps: expected a number above 0"),
    (["simulate", "policies/standard-canary.yaml", "--scenario", "aa", "--runs", "0"], 2, "--runs"),
    (["simulate", "/nonexistent.yaml", "--scenario", "aa"], 2, "/nonexistent.yaml"),
    (["crds", "--output-dir", "/proc/nope"], 1, "--output-dir /proc/nope"),
    (["controller", "--metrics-tls-cert", "/nonexistent.crt"], 2, "--metrics-tls-key: give the certificate"),
    (
        ["controller", "--metrics-tls-cert", "/nonexistent.crt", "--metrics-tls-key", "/nonexistent.key"],
        2,
        "--metrics-tls-cert/--metrics-tls-key: cannot load /nonexistent.crt",
    ),
    (["controller", "--notifications-config", "/nonexistent.yaml"], 2, "--notifications-config: cannot read"),
    (
        ["controller", "--notifications-config", "tests/cli/data/bad-notifications.yaml"],
        2,
        "--notifications-config: tests/cli/data/bad-notifications.yaml: destinations[0].url",
    ),
    (["controller", "--otlp-endpoint", "collector:4318"], 2, "--otlp-endpoint: expected an http(s) URL"),
    (["controller", "--trace-sample-ratio", "2"], 2, "--trace-sample-ratio: expected a number from 0 to 1"),
    (
        ["controller", "--shards", "3", "--shard", "5"],
        2,
        "--shard: 5 is not a shard of --shards 3; use 0 to 2",
    ),
    (["controller", "--shards", "3"], 2, "--shards: no home shard for this replica; pass --shard K"),
    (["lint", "/nonexistent"], 2, "/nonexistent: no such file or directory"),
    (["status", "hello", "--kubeconfig", "/nonexistent"], 1, "--kubeconfig /nonexistent: no such file"),
    (["promote", "hello", "--kubeconfig", "/nonexistent"], 1, "--kubeconfig /nonexistent: no such file"),
]


@pytest.mark.parametrize(("argv", "code", "needle"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_a_mistake_is_one_line_and_an_exit_code(argv: list[str], code: int, needle: str) -> None:
    root = Path(__file__).resolve().parents[2]
    with busy_port() as port:
        args = [str(port) if a == "BUSY" else a for a in argv]
        done = subprocess.run(
            [sys.executable, "-m", "rollout.cli.main", *args],
            check=False, capture_output=True, text=True, timeout=60, cwd=root,
        )  # fmt: skip
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert done.returncode == code and needle in last, (done.returncode, out)
