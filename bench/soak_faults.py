"""The soak's faults (bench/soak.py): the controller process killed and restarted, API faults, Prometheus
stopped for spells, a webhook that fails or hangs. Each is bounded by the run's duration and counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.integration.harness import NS, ROLLOUTS, Cluster

API_ERRORS = ((500, 0.03), (503, 0.03), (429, 0.02), (409, 0.02))  # about 10% of requests in all


class WebhookServer:
    """A step webhook on 127.0.0.1: a call's first attempt fails (500) or hangs past the hook's 2 s timeout
    two times in three; any later attempt for the same rollout and step passes."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.seen: set[tuple[str, int]] = set()
        self.counts: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _gate(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read() or b"{}")
        key = (str(body.get("name")), int(body.get("step") or 0))
        if key not in self.seen:
            self.seen.add(key)
            roll = self.random.random()
            if roll < 1 / 3:
                self.counts["webhook 500"] += 1
                return web.Response(status=500, text="soak: injected failure")
            if roll < 2 / 3:
                self.counts["webhook hang"] += 1
                await asyncio.sleep(5.0)
        return web.json_response({"ok": True})

    async def __aenter__(self) -> WebhookServer:
        app = web.Application()
        app.router.add_post("/gate", self._gate)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Injectors:
    def __init__(self, cluster: Cluster, log: Path, seed: int, hooks: WebhookServer) -> None:
        self.cluster = cluster
        self.log = log
        self.random = random.Random(seed + 1)
        self.hooks = hooks
        self.counts: Counter[str] = Counter()
        self.proc: asyncio.subprocess.Process | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.faults: list[Any] = []

    # --- the controller ---------------------------------------------------------------------------------

    async def start_controller(self) -> None:
        prom = self.cluster.env.prometheus
        assert prom is not None
        args = [
            sys.executable, "-m", "rollout.cli.main", "controller",
            "--kubeconfig", str(self.cluster.kubeconfig),
            "--prometheus-url", prom.url,
            "--webhook-allow", "127.0.0.0/8",
            "--metrics-addr", "127.0.0.1:0",
            "--log-format", "json",
            "--resync", "20s",
            "--workers", "8",
            "--analysis-settle", "300ms",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *args, stdout=out, stderr=out, env={**os.environ}
            )

    async def _kill_controller(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            self.counts["controller SIGKILL"] += 1

    async def _killer(self, until: float) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(self.random.uniform(8.0, 30.0))
            await self._kill_controller()
            await asyncio.sleep(self.random.uniform(0.2, 3.0))
            await self.start_controller()

    # --- Prometheus -----------------------------------------------------------------------------------

    async def _stop_prometheus(self, seconds: float) -> None:
        """SIGSTOP: queries hang until their timeout, as with an overloaded or partitioned server."""
        prom = self.cluster.env.prometheus
        assert prom is not None
        os.kill(prom.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(prom.process.pid, signal.SIGCONT)
        self.counts["Prometheus stopped (s)"] += round(seconds)

    def _step_ends(self) -> list[float]:
        """Seconds from now to the end of the bake of each step running now."""
        items, _ = self.cluster.store.list(ROLLOUTS, NS)
        now = datetime.now(UTC)
        ends = []
        for item in items:
            status = item.get("status") or {}
            started = status.get("stepStartedAt")
            if status.get("phase") == "Progressing" and started:
                at = datetime.fromisoformat(started.replace("Z", "+00:00"))
                ends.append(6.0 - (now - at).total_seconds())
        return [e for e in ends if e > 1.0]

    async def _outages(self, until: float) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(self.random.uniform(5.0, 20.0))
            ends = self._step_ends()
            if ends and self.random.random() < 0.5:
                # the last seconds of a running step: its final window must be measured before it ends
                await asyncio.sleep(max(0.0, self.random.choice(ends) - 2.0))
                self.counts["Prometheus stop at a step's end"] += 1
            else:
                self.counts["Prometheus stop at random"] += 1
            await self._stop_prometheus(self.random.uniform(2.0, 8.0))

    # --- the API server -------------------------------------------------------------------------------

    def _api_faults(self, seconds: float) -> None:
        faults = self.cluster.env.api.faults
        for code, share in API_ERRORS:
            self.faults.append(
                faults.add(action="error", code=code, share=share, duration=seconds, retry_after=1)
            )
        self.faults.append(faults.add(action="expire-watch", share=0.3, duration=seconds))
        self.faults.append(faults.add(action="drop-watch", after=5.0, duration=seconds))

    def start(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        self._api_faults(seconds)
        self.tasks = [asyncio.create_task(self._killer(until)), asyncio.create_task(self._outages(until))]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        prom = self.cluster.env.prometheus
        if prom is not None and prom.process.returncode is None:
            os.kill(prom.process.pid, signal.SIGCONT)
        self.cluster.env.api.faults.clear()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    def injected(self) -> dict[str, int]:
        out = dict(self.counts)
        for f in self.faults:
            label = f"API {f.action} {f.code}" if f.action == "error" else f"API {f.action}"
            out[label] = out.get(label, 0) + f.injected
        out.update(self.hooks.counts)
        return out
