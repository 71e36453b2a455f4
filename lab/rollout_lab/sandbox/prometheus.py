"""Start a local Prometheus (Debian's `prometheus` binary) that scrapes given targets: for `rollout sandbox
--prometheus`, `rollout demo` and the tests.

`async with local_prometheus(["127.0.0.1:8000"], scrape_interval=1.0) as prom:` starts it on a free port of
127.0.0.1 with a temporary storage directory, waits until it is ready, and stops it (and removes the
directory) on exit. `prom.url` is its base URL; `await prom.query("up")` runs an instant query.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml


class PrometheusUnavailable(RuntimeError):
    """No `prometheus` binary (install Debian's `prometheus` package: ./scripts/ensure-prometheus)."""


def find_prometheus(binary: str | None = None) -> str:
    path = shutil.which(binary or "prometheus")
    if path is None:
        raise PrometheusUnavailable(
            "no 'prometheus' binary on PATH: install Debian's 'prometheus' package (./scripts/ensure-prometheus)"
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def prometheus_duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def scrape_config(
    targets: Sequence[str],
    *,
    scrape_interval: float,
    job: str = "knative-sandbox",
    metrics_path: str = "/metrics",
) -> dict[str, Any]:
    interval = prometheus_duration(scrape_interval)
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": metrics_path,
                "scrape_interval": interval,
                "scrape_timeout": prometheus_duration(min(scrape_interval, 10.0)),
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


@dataclass
class LocalPrometheus:
    url: str
    data_dir: Path
    process: asyncio.subprocess.Process

    async def query(self, promql: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; returns the `result` list of a vector answer (raises on an error answer)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(f"{self.url}/api/v1/query", params=params) as response,
        ):
            body = await response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query {promql!r} failed: {body.get('error', body)}")
        return list(body["data"]["result"])


async def _wait_ready(url: str, process: asyncio.subprocess.Process, limit: float) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"prometheus exited with code {process.returncode} before it was ready")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(f"{url}/-/ready") as response:
                    if response.status == 200:
                        return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"prometheus not ready at {url} after {limit:.0f}s")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def local_prometheus(
    targets: Sequence[str],
    *,
    scrape_interval: float = 5.0,
    binary: str | None = None,
    port: int | None = None,
    job: str = "knative-sandbox",
    ready_timeout: float = 30.0,
) -> AsyncIterator[LocalPrometheus]:
    """Run Prometheus on 127.0.0.1 scraping `targets` ("host:port"); see the module docstring."""
    executable = find_prometheus(binary)
    data_dir = Path(tempfile.mkdtemp(prefix="rollout-prometheus-"))
    config = data_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets, scrape_interval=scrape_interval, job=job)))
    listen = f"127.0.0.1:{port or free_port()}"
    process = await asyncio.create_subprocess_exec(
        executable,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir / 'data'}",
        f"--web.listen-address={listen}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://{listen}"
    try:
        await _wait_ready(url, process, ready_timeout)
        yield LocalPrometheus(url=url, data_dir=data_dir, process=process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
