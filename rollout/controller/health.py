"""The controller's HTTP endpoints: /metrics (prometheus-client), /healthz (the process and its event loop
are alive and no reconcile is wedged), /readyz (the informers have synced; leader or standby alike)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from rollout.controller.metrics_auth import Verdict

# the Authorization header of a /metrics request -> whether it may read them (rollout.controller.metrics_auth)
MetricsGuard = Callable[[str | None], Awaitable[Verdict]]


@dataclass
class HealthChecks:
    alive: Callable[[], str | None]  # None when healthy, else why not
    ready: Callable[[], str | None]


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        checks: HealthChecks,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        guard: MetricsGuard | None = None,
        tls: ssl.SSLContext | None = None,
    ):
        """`guard`: who may read /metrics (None: anyone who reaches the port; the probes stay open either
        way, as the kubelet sends no token). `tls`: serve HTTPS with this context."""
        self.registry = registry
        self.checks = checks
        self.host = host
        self.port = port
        self.guard = guard
        self.tls = tls
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/livez", self._health)
        app.router.add_get("/readyz", self._ready)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.tls)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.guard is not None:
            verdict = await self.guard(request.headers.get("Authorization"))
            if not verdict.allowed:
                challenge = {"WWW-Authenticate": 'Bearer realm="metrics"'} if verdict.status == 401 else None
                return web.Response(status=verdict.status, text=verdict.reason + "\n", headers=challenge)
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, request: web.Request) -> web.Response:
        problem = self.checks.alive()
        return web.Response(status=500 if problem else 200, text=problem or "ok")

    async def _ready(self, request: web.Request) -> web.Response:
        problem = self.checks.ready()
        return web.Response(status=503 if problem else 200, text=problem or "ok")
