"""What bench/scale.py reads besides the sandbox: the controller's /metrics, /proc, a free port."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def proc_stats(pid: int) -> tuple[float, float]:
    """CPU seconds (user+system) and peak RSS in MB of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return cpu, (int(match.group(1)) / 1024 if match else float("nan"))


async def controller_writes(url: str) -> dict[str, int]:
    """The controller's writes so far, by "verb resource" (Lease renewals excluded)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line.startswith("knrollout_kube_request_duration_seconds_count{"):
            continue
        labels, value = line.rsplit(" ", 1)
        verb = re.search(r'verb="([^"]+)"', labels)
        resource = re.search(r'resource="([^"]+)"', labels)
        if verb is None or resource is None or resource.group(1) == "leases":
            continue
        if verb.group(1) in ("create", "patch", "update", "delete"):
            key = f"{verb.group(1)} {resource.group(1)}"
            out[key] = out.get(key, 0) + int(float(value))
    return out


async def events_sent(url: str, limit: float) -> None:
    """Wait until the controller has sent the Events it recorded (they leave its reconciles' critical path
    and may still be queued when the last step is served), so that the writes counted include them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
            text = await resp.text()
        queued = [line for line in text.splitlines() if line.startswith("knrollout_events_queued ")]
        if not queued or float(queued[0].split()[-1]) == 0:
            return
        await asyncio.sleep(0.5)


async def wait_for(check: Any, limit: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: not done after {limit:.0f}s")
        await asyncio.sleep(0.2)


async def scrape_counts(url: str) -> dict[str, float]:
    """Analysis ticks, batches (plan_tick queries) and Prometheus HTTP queries the controller made so far."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    out = {"ticks": 0.0, "batches": 0.0, "http": 0.0, "reconciles": 0.0}
    for line in text.splitlines():
        if line.startswith("knrollout_analysis_ticks_total "):
            out["ticks"] = float(line.split()[-1])
        elif line.startswith("knrollout_analysis_queries_per_tick_sum "):
            out["batches"] = float(line.split()[-1])
        elif line.startswith("knrollout_prometheus_query_duration_seconds_count{"):
            out["http"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith('knrollout_reconcile_duration_seconds_count{kind="Service"'):
            out["reconciles"] += float(line.rsplit(" ", 1)[1])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str, name: str) -> list[tuple[str, float]]:
    """(labels, value) of every sample of metric `name` in a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, value = line.rsplit(" ", 1)
            out.append((labels[len(name) :], float(value)))
    return out


def histogram_quantile(text: str, name: str, q: float) -> float:
    """The `q` quantile of histogram `name` (no labels) as PromQL would estimate it from its buckets."""
    summed: dict[float, float] = {}  # several expositions (one per replica) add up bucket by bucket
    for labels, value in _samples(text, name + "_bucket"):
        le = re.search(r'le="([^"]+)"', labels)
        if le is not None:
            bound = float("inf") if le.group(1) == "+Inf" else float(le.group(1))
            summed[bound] = summed.get(bound, 0.0) + value
    buckets = sorted(summed.items())
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    rank, prev_le, prev_count = q * buckets[-1][1], 0.0, 0.0
    for le_value, count in buckets:
        if count >= rank:
            if le_value == float("inf"):
                return prev_le
            return prev_le + (le_value - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-12)
        prev_le, prev_count = le_value, count
    return float("nan")


async def metrics_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        return await resp.text()


def prometheus_counters(text: str) -> dict[str, float]:
    """Prometheus' own CPU seconds, its instant queries (count and seconds), and the samples its engine read."""
    http = [
        (labels, v)
        for labels, v in _samples(text, "prometheus_http_request_duration_seconds_count")
        if 'handler="/api/v1/query"' in labels
    ]
    http_sum = [
        v
        for labels, v in _samples(text, "prometheus_http_request_duration_seconds_sum")
        if 'handler="/api/v1/query"' in labels
    ]
    return {
        "cpu": sum(v for _, v in _samples(text, "process_cpu_seconds_total")),
        "queries": sum(v for _, v in http),
        "query_seconds": sum(http_sum),
        "samples": sum(v for _, v in _samples(text, "prometheus_engine_query_samples_total")),
    }
