"""A real Prometheus for tests: OpenMetrics text backfilled with `promtool tsdb create-blocks-from
openmetrics` into a temporary TSDB, then `prometheus` serving it on 127.0.0.1 at a free port.

Deterministic: samples carry fixed timestamps (around 2023-11-14), retention is set far beyond them so the
blocks are never deleted, and there are no scrape jobs, so nothing else ever lands in the TSDB. Queries
name their evaluation time.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def binaries() -> tuple[str, str]:
    """Paths of prometheus and promtool; skips the test when absent (fails under CI, where
    scripts/test installs them)."""
    prometheus = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if prometheus and promtool:
        return prometheus, promtool
    message = "Debian's prometheus package is not installed (./scripts/ensure-prometheus installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Series:
    """One time series: metric name, labels, (unix seconds, value) samples in time order."""

    name: str
    labels: Mapping[str, str]
    samples: list[tuple[float, float]] = field(default_factory=list)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def openmetrics(series: Iterable[Series]) -> str:
    """OpenMetrics text for `series`: one `unknown` family per metric name, each series' samples in order."""
    by_name: dict[str, list[Series]] = {}
    for s in series:
        by_name.setdefault(s.name, []).append(s)
    lines: list[str] = []
    for name, members in by_name.items():
        lines.append(f"# TYPE {name} unknown")
        for s in members:
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(s.labels.items()))
            for ts, value in s.samples:
                lines.append(f"{name}{{{labels}}} {_format_value(value)} {ts:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalPrometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def backfill(series: Sequence[Series], workdir: Path) -> Path:
    """A TSDB directory holding `series`, made by promtool."""
    _, promtool = binaries()
    source = workdir / "backfill.om"
    source.write_text(openmetrics(series), encoding="utf-8")
    data = workdir / "data"
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed: {result.stderr or result.stdout}")
    return data


def start(data: Path, workdir: Path, *, startup_timeout: float = 20.0) -> LocalPrometheus:
    """Prometheus serving `data` on 127.0.0.1 (a free port), ready to answer queries."""
    prometheus, _ = binaries()
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between the probe and the bind
        port = free_port()
        log_path = workdir / f"prometheus-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    "--storage.tsdb.retention.time=100y",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LocalPrometheus(f"http://127.0.0.1:{port}", process, log_path)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        server.stop()
        last_error = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"prometheus did not become ready:\n{last_error}")
