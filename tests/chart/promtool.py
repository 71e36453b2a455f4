"""Prometheus' own tools (Debian's prometheus package) on what the chart renders: `promtool` checks, and a
real `prometheus` on 127.0.0.1 scraping a local exporter through the chart's relabeling."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.rendering import Obj


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: scripts/ensure-prometheus installs Debian's prometheus package")
        pytest.skip("promtool is not installed (run ./scripts/ensure-prometheus)")
    return path


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def write_rules(directory: Path, groups: list[Obj], name: str = "rules.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "prometheus is missing: scripts/ensure-prometheus installs Debian's prometheus package"
            )
        pytest.skip("prometheus is not installed (run ./scripts/ensure-prometheus)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@contextmanager
def exporter(body: str) -> Iterator[str]:
    """A /metrics endpoint on 127.0.0.1 answering `body`; yields its host:port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running(config: Obj, workdir: Path, timeout: float = 20.0) -> Iterator[str]:
    """A real Prometheus with `config` on 127.0.0.1 (free port, temporary TSDB); yields its base URL."""
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus(),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / "prometheus.log").read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def query_until(url: str, promql: str, timeout: float = 15.0) -> list[Obj]:
    """The instant-query result of `promql`, polled until non-empty or `timeout` (then empty)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get_json(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        result: list[Obj] = answer["data"]["result"]
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)
