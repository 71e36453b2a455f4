"""The whole sandbox in one place: API server + Knative simulator + traffic generator (+ its /metrics),
optionally a local Prometheus scraping it. Used by `rollout sandbox`, `rollout demo` and tests.

    async with sandbox_environment(SandboxOptions(prometheus=True)) as env:
        env.api.url, env.metrics.url, env.prometheus.url
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from rollout.knative.dialects import Dialect
from rollout_lab.sandbox.apiserver.server import SandboxApiServer
from rollout_lab.sandbox.apiserver.store import MemoryStore
from rollout_lab.sandbox.clock import Clock, WallClock
from rollout_lab.sandbox.knative.controller import KnativeSimulator
from rollout_lab.sandbox.knative.fleet import Fleet
from rollout_lab.sandbox.knative.plan import Settings
from rollout_lab.sandbox.prometheus import LocalPrometheus, local_prometheus
from rollout_lab.sandbox.traffic.generator import GeneratorSettings, TrafficGenerator
from rollout_lab.sandbox.traffic.server import MetricsServer


@dataclass(frozen=True)
class SandboxOptions:
    host: str = "127.0.0.1"
    port: int = 0
    metrics_port: int = 0
    token: str | None = None
    domain: str = "example.com"
    dialects: tuple[Dialect, ...] = ("knative-classic",)
    rps: float = 5.0
    diurnal_amplitude: float = 0.0
    ready_delay: float = 2.0
    cold_start: float = 1.5
    seed: int | None = None
    prometheus: bool = False
    prometheus_port: int | None = None
    scrape_interval: float = 5.0
    tag_header_routing: bool = True
    generator_tick: float = 0.25


@dataclass
class SandboxEnvironment:
    options: SandboxOptions
    clock: Clock
    api: SandboxApiServer
    simulator: KnativeSimulator
    generator: TrafficGenerator
    metrics: MetricsServer
    prometheus: LocalPrometheus | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def store(self) -> MemoryStore:
        return self.api.store


@contextlib.asynccontextmanager
async def sandbox_environment(
    options: SandboxOptions | None = None, *, clock: Clock | None = None
) -> AsyncIterator[SandboxEnvironment]:
    """Start everything (Prometheus only when `options.prometheus`); stop it all on exit."""
    options = options or SandboxOptions()
    clock = clock or WallClock()
    store = MemoryStore(clock=clock.now)
    api = SandboxApiServer(store, host=options.host, port=options.port, token=options.token)
    fleet = Fleet(
        seed=options.seed or 0, default_ready_delay=options.ready_delay, default_cold_start=options.cold_start
    )
    simulator = KnativeSimulator(store, clock, fleet=fleet, settings=Settings(domain=options.domain))
    simulator.install()
    generator = TrafficGenerator(
        store,
        fleet,
        clock,
        GeneratorSettings(
            default_rps=options.rps,
            diurnal_amplitude=options.diurnal_amplitude,
            dialects=options.dialects,
            tag_header_routing=options.tag_header_routing,
            seed=options.seed,
            tick=options.generator_tick,
        ),
    )
    metrics = MetricsServer(generator.render_metrics, host=options.host, port=options.metrics_port)
    env = SandboxEnvironment(options, clock, api, simulator, generator, metrics)
    async with contextlib.AsyncExitStack() as stack:
        await api.start()
        stack.push_async_callback(api.stop)
        await metrics.start()
        stack.push_async_callback(metrics.stop)
        env.tasks = [asyncio.ensure_future(simulator.run()), asyncio.ensure_future(generator.run())]
        stack.push_async_callback(_cancel, env.tasks)
        if options.prometheus:
            env.prometheus = await stack.enter_async_context(
                local_prometheus(
                    [f"{options.host}:{metrics.port}"],
                    scrape_interval=options.scrape_interval,
                    port=options.prometheus_port,
                )
            )
        yield env


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
