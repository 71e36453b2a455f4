"""Benchmark of the sandbox API server (a script, not a test): N Knative Services with one open watch each
(fieldSelector=metadata.name), and merge-patch writes at a target rate, driven over loopback from separate
processes. Prints writes/s, write latency, watch event delivery latency (write sent -> event read by the
watcher), and the server's CPU and RSS; then a closed-loop run to find the saturation write rate.

    .venv/bin/python bench/sandbox_api.py                 # 1000 services, 600 writes/s for 15 s
    .venv/bin/python bench/sandbox_api.py --json --services 1000 --rate 800 --duration 20

Everything runs on 127.0.0.1, in bounded time (--duration at most 120 s), and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

NAMESPACE = "bench"
KSVC_PATH = f"/apis/serving.knative.dev/v1/namespaces/{NAMESPACE}/services"
SENT_AT = "bench.knative-rollout.dev/sent-at"
MERGE = {"Content-Type": "application/merge-patch+json"}


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ksvc(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{i:05d}", "labels": {"bench": "yes"}},
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
                "spec": {
                    "containerConcurrency": 10,
                    "containers": [
                        {"image": f"example.com/app:{i}", "env": [{"name": "N", "value": str(i)}]}
                    ],
                },
            },
            "traffic": [{"latestRevision": True, "percent": 100}],
        },
    }


# ---------------------------------------------------------------- roles (each in its own process)


async def role_server() -> None:
    from rollout_lab.sandbox.apiserver import SandboxApiServer

    async with SandboxApiServer(bookmark_interval=3600) as srv:
        print(srv.port, flush=True)
        await asyncio.Event().wait()


async def role_watcher(url: str, services: int) -> None:
    """Open one watch per service; record (sent-at, delivery latency) of each write's event until a line
    arrives on stdin."""
    events: list[tuple[float, float]] = []
    opened = 0
    all_open = asyncio.Event()

    async def watch_one(session: aiohttp.ClientSession, name: str, rv: str) -> None:
        nonlocal opened
        query = f"watch=1&fieldSelector=metadata.name%3D{name}&resourceVersion={rv}&timeoutSeconds=600"
        async with session.get(f"{url}{KSVC_PATH}?{query}") as resp:
            opened += 1
            if opened == services:
                all_open.set()
            async for line in resp.content:
                now = time.time()
                event = json.loads(line)
                sent = (event["object"]["metadata"].get("annotations") or {}).get(SENT_AT)
                if event["type"] == "MODIFIED" and sent:
                    events.append((float(sent), now - float(sent)))

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        async with session.get(f"{url}{KSVC_PATH}") as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        tasks = [asyncio.create_task(watch_one(session, f"svc-{i:05d}", rv)) for i in range(services)]
        await asyncio.wait_for(all_open.wait(), 60)
        await asyncio.sleep(0.5)
        print("ready", flush=True)
        stop = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.wait_for(stop, 300)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"open": opened, "events": events}))


async def role_writer(url: str, services: int, rate: float, duration: float, concurrency: int) -> None:
    """Open loop at `rate` writes/s (rate 0: closed loop with `concurrency` workers) for `duration` s."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    rng = random.Random(1)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def write() -> None:
            nonlocal errors
            name = f"svc-{rng.randrange(services):05d}"
            started = time.time()
            body = {"metadata": {"annotations": {SENT_AT: repr(started)}}}
            async with session.patch(f"{url}{KSVC_PATH}/{name}", json=body, headers=MERGE) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.time() - started)

        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + duration
        if rate > 0:
            in_flight: set[asyncio.Task[None]] = set()
            while (now := loop.time()) < end:
                due = int((now - start) * rate) - sent
                for _ in range(max(0, due)):
                    task = asyncio.create_task(write())
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    sent += 1
                await asyncio.sleep(0.005)
            await asyncio.gather(*in_flight, return_exceptions=True)
        else:

            async def worker() -> None:
                nonlocal sent
                while loop.time() < end:
                    sent += 1
                    await write()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = loop.time() - start
    print(
        json.dumps(
            {
                "attempted": sent,
                "done": len(latencies),
                "errors": errors,
                "elapsed": elapsed,
                "latencies": latencies,
            }
        )
    )


# ---------------------------------------------------------------- orchestration


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


async def create_services(url: str, count: int) -> float:
    started = time.time()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        async with session.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}) as resp:
            assert resp.status == 201, await resp.text()
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem, session.post(f"{url}{KSVC_PATH}", json=ksvc(i)) as resp:
                assert resp.status == 201, await resp.text()

        await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.time() - started)


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line a role process prints (its port, or "ready"), waiting at most `timeout` s."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"{proc.args!r} printed nothing in {timeout} s")
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"{proc.args!r} exited with {proc.wait()}")
    return line


def store_baseline(services: int, seconds: float) -> float:
    """Baseline in the same run: the same merge-patch writes on a MemoryStore in-process (no HTTP, no
    watches), i.e. what the store alone sustains on one core."""
    from rollout_lab.sandbox.apiserver import MemoryStore
    from rollout_lab.sandbox.apiserver.kinds import KSERVICES, NAMESPACES
    from rollout_lab.sandbox.apiserver.patches import merge_patch

    store = MemoryStore()
    store.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
    for i in range(services):
        body = ksvc(i)
        body["metadata"]["namespace"] = NAMESPACE
        store.create(KSERVICES, body)
    rng = random.Random(1)
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        name = f"svc-{rng.randrange(services):05d}"
        current = store.get(KSERVICES, NAMESPACE, name)
        assert current is not None
        store.update(
            KSERVICES, merge_patch(current, {"metadata": {"annotations": {SENT_AT: repr(time.time())}}})
        )
        done += 1
    return done / (time.perf_counter() - started)


def _phase(
    server: subprocess.Popen[str],
    url: str,
    args: argparse.Namespace,
    rate: float,
    seconds: float,
    workers: int,
) -> tuple[dict[str, Any], float, float, float]:
    """Run one writer process; returns its stats, the server's CPU (cores) and the phase's time window."""
    cpu_before, started = cpu_seconds(server.pid), time.time()
    writer = spawn(
        "--role",
        "writer",
        "--url",
        url,
        "--services",
        str(args.services),
        "--rate",
        str(rate),
        "--duration",
        str(seconds),
        "--concurrency",
        str(workers),
    )
    stats = json.loads(writer.communicate(timeout=seconds + 120)[0])
    ended = time.time()
    return stats, (cpu_seconds(server.pid) - cpu_before) / (ended - started), started, ended


def _events(events: list[list[float]], started: float, ended: float) -> list[float]:
    return [latency for sent, latency in events if started <= sent <= ended]


def run(args: argparse.Namespace) -> dict[str, Any]:
    server = spawn("--role", "server")
    watcher: subprocess.Popen[str] | None = None
    try:
        port = read_line(server, 30)
        url = f"http://127.0.0.1:{port}"
        create_rate = asyncio.run(create_services(url, args.services))
        rss_loaded = rss_mib(server.pid)
        watcher = spawn("--role", "watcher", "--url", url, "--services", str(args.services))
        read_line(watcher, 90)
        rss_watched = rss_mib(server.pid)
        written, cpu, open_start, open_end = _phase(server, url, args, args.rate, args.duration, 256)
        closed, cpu_closed, closed_start, closed_end = _phase(server, url, args, 0, args.saturate, 32)
        time.sleep(1.0)  # let the last events arrive
        watched = json.loads(watcher.communicate("stop\n", timeout=120)[0])
        rss_end = rss_mib(server.pid)
    finally:
        for proc in (watcher, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    baseline = store_baseline(args.services, min(args.saturate, 5.0))
    lat, wlat = written["latencies"], _events(watched["events"], open_start, open_end)
    closed_events = _events(watched["events"], closed_start, closed_end)
    return {
        "services": args.services,
        "watches_open": watched["open"],
        "create_per_s": round(create_rate, 1),
        "target_writes_per_s": args.rate,
        "writes_per_s": round(written["done"] / written["elapsed"], 1),
        "write_errors": written["errors"] + closed["errors"],
        "write_p50_ms": round(quantile(lat, 0.5) * 1000, 2),
        "write_p99_ms": round(quantile(lat, 0.99) * 1000, 2),
        "events_expected": written["done"],
        "events_received": len(wlat),
        "event_p50_ms": round(quantile(wlat, 0.5) * 1000, 2),
        "event_p99_ms": round(quantile(wlat, 0.99) * 1000, 2),
        "event_mean_ms": round(statistics.fmean(wlat) * 1000, 2) if wlat else None,
        "server_cpu_cores": round(cpu, 2),
        "saturation_writes_per_s": round(closed["done"] / closed["elapsed"], 1),
        "saturation_write_p99_ms": round(quantile(closed["latencies"], 0.99) * 1000, 2),
        "saturation_events_received": f"{len(closed_events)}/{closed['done']}",
        "saturation_event_p99_ms": round(quantile(closed_events, 0.99) * 1000, 2),
        "saturation_server_cpu_cores": round(cpu_closed, 2),
        "baseline_store_writes_per_s_in_process": round(baseline, 1),
        "server_rss_mib_after_create": round(rss_loaded, 1),
        "server_rss_mib_with_watches": round(rss_watched, 1),
        "server_rss_mib_end": round(rss_end, 1),
        "cpus": os.cpu_count(),
    }


def print_table(result: dict[str, Any]) -> None:
    width = max(len(k) for k in result)
    print(f"{'metric'.ljust(width)}  value")
    print(f"{'-' * width}  -----")
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    verdict = result["writes_per_s"] >= 500 and result["events_received"] >= 0.98 * result["events_expected"]
    print(
        f"\ntarget (>= 1000 services with a watch each, >= 500 writes/s): {'met' if verdict else 'NOT met'}"
        f" with {result['services']} services at {result['writes_per_s']} writes/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=600.0, help="target writes/s of the open-loop phase")
    parser.add_argument(
        "--duration", type=float, default=15.0, help="seconds of the open-loop phase (<= 120)"
    )
    parser.add_argument(
        "--saturate", type=float, default=5.0, help="seconds of the closed-loop phase (<= 60)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--role", choices=["server", "watcher", "writer"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        asyncio.run(role_server())
    elif args.role == "watcher":
        asyncio.run(role_watcher(args.url, args.services))
    elif args.role == "writer":
        asyncio.run(role_writer(args.url, args.services, args.rate, args.duration, args.concurrency))
    else:
        args.duration = min(max(args.duration, 1.0), 120.0)
        args.saturate = min(max(args.saturate, 1.0), 60.0)
        result = run(args)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print_table(result)


if __name__ == "__main__":
    main()
