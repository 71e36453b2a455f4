"""The controller process: informers -> work queue -> workers running the reconcilers, the analysis
scheduler, leader election, and the health/metrics server; graceful shutdown.

Every replica runs the informers (a standby has warm caches and is ready); only the lease holder's workers
reconcile, and every write is fenced by the lease (rollout.kube.leader). With shards, each replica reconciles
the namespaces of the shards whose Leases it holds, and each write is fenced by its namespace's shard
(rollout.kube.shards)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp.abc import AbstractResolver

from rollout import tracing
from rollout.analysis.batching import AnalysisRequest, Answer, run_tick
from rollout.analysis.prometheus import PrometheusSources
from rollout.api.notifications import NotificationsConfig
from rollout.api.source import ClusterMetricSourceSpec, Dialect
from rollout.controller.analysis import AnalysisScheduler, Evaluator, Measure, TickReport
from rollout.controller.caches import Caches
from rollout.controller.context import Context
from rollout.controller.evaluation import evaluate_rollout
from rollout.controller.grants import ClusterSources
from rollout.controller.health import HealthChecks, HealthServer
from rollout.controller.metrics import ControllerMetrics
from rollout.controller.metrics_auth import KubeReviewer, MetricsAuth
from rollout.controller.notifier import NotificationSettings, Notifier
from rollout.controller.ownership import Ownership
from rollout.controller.policies import PolicyReconciler
from rollout.controller.reconcile import TargetReconciler
from rollout.controller.rollouts import ControllerDefaults
from rollout.controller.views import ObjectKey
from rollout.controller.webhooks import WebhookCaller, WebhookRunner, WebhookSettings
from rollout.kube.client import KubeClient, NotLeader
from rollout.kube.eventqueue import EventQueue
from rollout.kube.events import EventRecorder
from rollout.kube.informer import InformerSettings
from rollout.kube.leader import LeaseSettings, default_identity
from rollout.kube.secrets import KubeSecretReader
from rollout.kube.shards import ShardElector
from rollout.kube.traffic import TrafficValidator, knative_rules
from rollout.kube.workqueue import QueueShutDown, WorkQueue

log = structlog.get_logger(__name__)

# Concurrent reconciles. A reconcile mostly waits on the API server (a step is a status write, then a traffic
# write), so when many steps fall due at once, too few in flight leave the controller waiting instead of
# working; an idle worker costs a parked coroutine (docs/benchmark.md compares 16 and 48).
DEFAULT_WORKERS = 48


@dataclass(frozen=True)
class ControllerConfig:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    workers: int = DEFAULT_WORKERS
    leader_elect: bool = False
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    shards: int = 1  # more than one: each replica owns the namespaces of its shards (implies leader_elect)
    shard_home: int | None = 0  # this replica's own shard (a StatefulSet's ordinal); None: stand-in only
    defaults: ControllerDefaults = field(default_factory=ControllerDefaults)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no HTTP server
    informer: InformerSettings = field(default_factory=InformerSettings)
    analysis_settle: float = 0.5  # seconds after a window's end before it is queried
    shutdown_grace: float = 10.0
    wedged_after: float = 300.0  # a reconcile running longer than this makes /healthz fail
    identity: str = ""
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    # the admins' notification destinations and defaults (--notifications-config); policies add their own
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    cluster_sources: bool = True  # watch ClusterMetricSources (needs list/watch on them cluster-wide)
    webhook_resolver: AbstractResolver | None = None  # None: the system's; tests point names at 127.0.0.1
    webhook_socket_factory: Callable[[Any], Any] | None = None  # tests refuse any address off 127.0.0.0/8
    # who may read /metrics: anyone who reaches the port (False), or identities the API server allows to get
    # it (True: TokenReview + SubjectAccessReview, rollout.controller.metrics_auth)
    metrics_auth: bool = False
    metrics_tls: ssl.SSLContext | None = None  # serve the HTTP endpoints over TLS


def _dialect(found: ClusterMetricSourceSpec | str) -> Dialect | None:
    return found.dialect if isinstance(found, ClusterMetricSourceSpec) else None


class Controller:
    def __init__(
        self,
        client: KubeClient,
        config: ControllerConfig | None = None,
        *,
        evaluator: Evaluator | None = evaluate_rollout,
        measure: Measure | None = None,
        validator: TrafficValidator = knative_rules,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self.config = config = config or ControllerConfig()
        self.client = client
        self.identity = config.identity or config.lease.identity or default_identity()
        self.metrics = metrics or ControllerMetrics()
        client.observer = self.metrics.observe_request
        self.leader: ShardElector | None = None
        if config.leader_elect or config.shards > 1:
            lease = LeaseSettings(**{**config.lease.__dict__, "identity": self.identity})
            self.leader = ShardElector(client, lease, config.shards, config.shard_home)
            client.fence = self.leader.check
        self.queue: WorkQueue[ObjectKey] = WorkQueue()
        self.caches = Caches.create(
            client, list(config.namespaces) or None, config.informer, cluster_sources=config.cluster_sources
        )
        self.metrics.watch_rollouts(
            lambda: [r for r in self.caches.parsed_rollouts() if self.owns(r.metadata.namespace or "")]
        )
        self._sources: PrometheusSources | None = None
        secrets = KubeSecretReader(client)
        cluster_sources = ClusterSources(self.caches.cluster_source)
        if measure is None:
            self._sources = PrometheusSources(
                secrets,
                default_address=config.defaults.prometheus_url,
                granted=cluster_sources,
                observer=self.metrics.observe_query,
            )
            sources = self._sources

            async def measure_prometheus(
                requests: Sequence[AnalysisRequest],
            ) -> Mapping[AnalysisRequest, Answer]:
                return await run_tick(requests, sources)

            measure = measure_prometheus
        self.analysis = AnalysisScheduler(
            measure,
            self.queue.add_due,  # a measured window is due work, like a timer
            settle=config.analysis_settle,
            default_dialect=config.defaults.dialect or Dialect.KNATIVE_CLASSIC,
            source_dialect=lambda name: _dialect(cluster_sources(name)),
            on_tick=self._on_tick,
        )
        caller = WebhookCaller(
            config.webhooks,
            secrets=secrets,
            resolver=config.webhook_resolver,
            socket_factory=config.webhook_socket_factory,
        )
        self.webhooks = WebhookRunner(caller, self.queue.add)  # a finished call re-queues its target
        self.notifier = Notifier(
            NotificationSettings(
                config.notifications, config.webhooks.destinations, config.webhooks.signing_key
            ),
            self.queue.add,  # a finished delivery re-queues its target, whose ledger records it
            self.metrics,
            secrets=secrets,
            resolver=config.webhook_resolver,
            socket_factory=config.webhook_socket_factory,
        )
        self.recorder = EventRecorder(client, instance=self.identity)
        # Events leave the reconciles' critical path, and wait (up to 2 s) while reconciles are queued
        self.events = EventQueue(self.recorder, busy=lambda: len(self.queue) > 0)
        self.metrics.events_queued.set_function(lambda: len(self.events))
        self.ctx = Context(
            client=client,
            caches=self.caches,
            recorder=self.events,
            metrics=self.metrics,
            webhooks=self.webhooks,
            validator=validator,
            notifier=self.notifier,
            defaults=config.defaults,
            analysis=self.analysis,
            evaluator=evaluator,
            enqueue=self.queue.add,
        )
        self.ctx.expectations.running = self.queue.in_process
        self.ownership = Ownership(self.leader, self.caches, self.queue.add, self._abandon, self.metrics)
        # a replica queues only what it owns (taking a shard queues all of that shard's keys)
        self.caches.wire(self._enqueue, self.ctx.expectations)
        for informer in (self.caches.services, self.caches.routes):
            informer.add_handler(lambda kind, old, new: self.ctx.served.note(kind, new, self.ctx.clock()))
        self.targets = TargetReconciler(self.ctx)
        self.policies = PolicyReconciler(self.ctx)
        self.health: HealthServer | None = None
        if config.metrics_port is not None:
            self.health = HealthServer(
                self.metrics.registry,
                HealthChecks(self._alive, self._ready),
                config.metrics_host,
                config.metrics_port,
                guard=MetricsAuth(KubeReviewer(client)).check if config.metrics_auth else None,
                tls=config.metrics_tls,
            )
        self._busy: dict[int, tuple[ObjectKey, float]] = {}
        self._beat = time.monotonic()
        self.started = asyncio.Event()
        self.reconciled = 0

    # --- leadership and health -------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """Holds the Lease (with shards: at least one)."""
        return self.leader is None or self.leader.is_leader

    def owns(self, namespace: str) -> bool:
        return self.ownership.owns(namespace)

    def _enqueue(self, key: ObjectKey) -> None:
        if self.ownership.owns(key.namespace):
            self.queue.add(key)

    def _abandon(self, namespaces: Callable[[str], bool]) -> None:
        self.webhooks.calls.abandon(namespaces)
        self.notifier.calls.abandon(namespaces)

    def _on_tick(self, report: TickReport) -> None:
        self.metrics.observe_tick(report.rollouts, report.queries, time.time() - report.end.timestamp())

    def _alive(self) -> str | None:
        lag = time.monotonic() - self._beat
        if lag > 10:
            return f"the event loop did not run for {lag:.0f}s"
        now = time.monotonic()
        for key, since in self._busy.values():
            if now - since > self.config.wedged_after:
                return f"reconcile of {key} has run for {now - since:.0f}s"
        return None

    def _ready(self) -> str | None:
        waiting = [i.resource.plural for i in self.caches.all if not i.synced]
        return f"informers not synced: {', '.join(waiting)}" if waiting else None

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            self.metrics.queue_depth.set(len(self.queue) + self.queue.delayed)
            await asyncio.sleep(1.0)

    # --- work ------------------------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> float | None:
        if key.kind == "RolloutPolicy":
            return await self.policies.reconcile(key)
        return await self.targets.reconcile(key)

    async def _worker(self, n: int) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            started = time.monotonic()
            self._busy[n] = (key, started)
            owned = self.owns(key.namespace)
            try:
                if not owned:
                    continue  # a standby drops work; a shard's keys are enqueued again when it is taken
                where = {"kind": key.kind, "namespace": key.namespace, "name": key.name}
                with tracing.span("reconcile", where) as current:
                    requeue = await self.reconcile(key)
                    tracing.annotate(current, {"requeue_after": requeue})
                self.queue.forget(key)
                if requeue is not None:
                    self.queue.add_after(key, requeue)
                self.reconciled += 1
            except NotLeader:
                log.info("not the leader any more: dropping work", key=str(key))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.queue.add_rate_limited(key)
                self.metrics.reconcile_errors.labels(key.kind, type(exc).__name__).inc()
                log.warning(
                    "reconcile failed",
                    key=str(key),
                    error=str(exc) or type(exc).__name__,
                    error_type=type(exc).__name__,
                    retry_in=round(delay, 3),
                )
            finally:
                if owned:
                    self.metrics.reconciles.labels(key.kind).observe(time.monotonic() - started)
                self._busy.pop(n, None)
                try:  # events that came in meanwhile: the echo of this reconcile's write is dropped
                    self.ctx.expectations.release(key)
                except Exception:
                    log.exception("held event failed", key=str(key))
                    self.queue.add(key)
                self.queue.done(key)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down gracefully: stop taking work, let the running reconciles
        finish (up to shutdown_grace), release the lease."""
        cfg = self.config
        background: list[asyncio.Task[None]] = [asyncio.create_task(i.run()) for i in self.caches.all]
        background.append(asyncio.create_task(self._heartbeat()))
        if self.health is not None:
            await self.health.start()
        log.info(
            "controller starting",
            identity=self.identity,
            namespaces=list(cfg.namespaces) or "all",
            leader_election=cfg.leader_elect,
            metrics=self.health.url if self.health else None,
        )
        workers: list[asyncio.Task[None]] = []
        try:
            synced = asyncio.create_task(self.caches_synced())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({synced, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not synced.done():
                synced.cancel()
                return
            stopping.cancel()
            log.info("caches synced", objects={i.resource.plural: len(i) for i in self.caches.all})
            if self.leader is not None:
                background.append(asyncio.create_task(self.leader.run()))
            else:
                self.metrics.leader.set(1)
                for key in self.caches.all_keys():
                    self.queue.add(key)
            background.append(asyncio.create_task(self.analysis.run()))
            self.events.start()
            workers = [asyncio.create_task(self._worker(n)) for n in range(cfg.workers)]
            self.started.set()
            await stop.wait()
        finally:
            await self._shutdown(workers, background)

    async def caches_synced(self) -> None:
        for informer in self.caches.all:
            await informer.wait_synced()

    async def _shutdown(
        self, workers: list[asyncio.Task[None]], background: list[asyncio.Task[None]]
    ) -> None:
        log.info("controller stopping", running=len(self._busy))
        self.queue.shutdown()
        if workers:
            _, late = await asyncio.wait(workers, timeout=self.config.shutdown_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        await self.events.close(self.config.shutdown_grace)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self.ownership.close()
        if self.leader is not None:
            await self.leader.release()
        await self.webhooks.close()
        await self.notifier.close()
        if self._sources is not None:
            self._sources.close()
        if self.health is not None:
            await self.health.stop()
        log.info("controller stopped", reconciled=self.reconciled)


@contextlib.asynccontextmanager
async def running(controller: Controller) -> AsyncIterator[Controller]:
    """Run a controller in the background (tests, demo); stop it gracefully on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    try:
        yield controller
    finally:
        stop.set()
        await task
