"""Analysis ticks across rollouts: every rollout whose aligned window ends at the same moment is measured in
ONE `run_tick` (one query per source, template and window for all of them), then each rollout's reconcile
turns its observations into an AnalysisUpdate with the judges and hands it to `decide`.

Reconciles register the window a rollout wants next (`want`); at the window's end (plus `settle`, for the
last scrape to land) the scheduler measures everything registered for that moment and enqueues the targets;
their reconciles `take` the observations, provided the rollout still wants exactly that window (a step that
moved on meanwhile gets a fresh window instead)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from rollout import tracing
from rollout.analysis.batching import AnalysisRequest, Answer, plan_tick
from rollout.analysis.dialects import DEFAULT_SPECS, DialectSpec
from rollout.analysis.source import SourceRef
from rollout.api.rollout import Rollout
from rollout.api.source import Dialect
from rollout.controller.schedule import Tick
from rollout.controller.views import ObjectKey
from rollout.engine.inputs import AnalysisUpdate
from rollout.engine.judges.metric import buckets_read
from rollout.engine.observations import MeasurementError, MetricObservation

log = structlog.get_logger(__name__)

# (rollout, its observations by metric name, the window) -> the judges' verdicts (rollout.engine's evaluate)
Evaluator = Callable[[Rollout, Mapping[str, MetricObservation], Tick], AnalysisUpdate]
Measure = Callable[[Sequence[AnalysisRequest]], Awaitable[Mapping[AnalysisRequest, Answer]]]
RolloutId = tuple[str, str]  # (namespace, name)
SourceDialect = Callable[[str], Dialect | None]  # a ClusterMetricSource's name -> its dialect, if it sets one


def rollout_id(rollout: Rollout) -> RolloutId:
    return (rollout.metadata.namespace or "", rollout.metadata.name)


def analysis_requests(
    rollout: Rollout,
    tick: Tick,
    specs: Mapping[Dialect, DialectSpec] = DEFAULT_SPECS,
    default_dialect: Dialect = Dialect.KNATIVE_CLASSIC,
    source_dialect: SourceDialect = lambda ref: None,
) -> list[AnalysisRequest]:
    """What one rollout needs measured for `tick`: each policy metric, for its candidate and its stable
    (a latency metric, only the buckets its judges read once they have chosen them: its status says which).
    The dialect: the policy's, else its ClusterMetricSource's (`source_dialect`), else the controller's."""
    spec = rollout.spec
    policy = spec.policy.spec
    namespace = rollout.metadata.namespace or ""
    source = SourceRef.of(policy.metric_source, namespace)
    ref = policy.metric_source.ref
    chosen = policy.metric_source.dialect or (source_dialect(ref) if ref is not None else None)
    dialect = specs[chosen or default_dialect]
    window = (tick.end - tick.start).total_seconds()
    ident = f"{namespace}/{rollout.metadata.name}"
    out = []
    for metric in policy.analysis.metrics:
        out.append(
            AnalysisRequest(
                rollout=ident,
                metric=metric.name,
                source=source,
                namespace=namespace,
                service=spec.target.name,
                canary=spec.candidate_revision,
                stable=spec.stable_revision,
                window_seconds=window,
                at=tick.end,
                builtin=metric.builtin,
                dialect=dialect if metric.builtin is not None else None,
                template=metric.query,
                buckets=buckets_read(metric, rollout.status.judge_state.get(metric.name)),
            )
        )
    return out


def observations_of(
    requests: Sequence[AnalysisRequest], answers: Mapping[AnalysisRequest, Answer], tick: Tick
) -> dict[str, MetricObservation]:
    out: dict[str, MetricObservation] = {}
    for req in requests:
        answer = answers.get(req)
        canary = answer.canary if answer else MeasurementError("not measured")
        stable = answer.stable if answer else MeasurementError("not measured")
        out[req.metric] = MetricObservation(req.metric, tick.start, tick.end, canary, stable)
    return out


@dataclass
class _Wanted:
    key: ObjectKey
    rollout: Rollout
    tick: Tick


@dataclass(frozen=True)
class TickReport:
    end: datetime
    rollouts: int
    queries: int
    seconds: float


_RAN_MEMORY = 60.0  # seconds a measured window end is remembered (late askers are gathered for `coalesce`)


class AnalysisScheduler:
    def __init__(
        self,
        measure: Measure,
        notify: Callable[[ObjectKey], None],
        *,
        settle: float = 0.5,
        default_dialect: Dialect = Dialect.KNATIVE_CLASSIC,
        source_dialect: SourceDialect = lambda ref: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_tick: Callable[[TickReport], None] | None = None,
        coalesce: float = 0.5,
    ) -> None:
        self.measure = measure
        self.notify = notify
        self.settle = settle
        self.default_dialect = default_dialect
        self.source_dialect = source_dialect
        self.clock = clock
        self.on_tick = on_tick
        self._wanted: dict[RolloutId, _Wanted] = {}
        self._results: dict[RolloutId, tuple[Tick, dict[str, MetricObservation]]] = {}
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._inflight: dict[RolloutId, Tick] = {}
        self.reports: list[TickReport] = []  # the last few ticks, for logs and benchmarks
        self.coalesce = coalesce
        self._ran: dict[datetime, float] = {}  # window end -> when it was last measured (loop time)

    def want(self, key: ObjectKey, rollout: Rollout, tick: Tick) -> None:
        """Measure `tick` for this rollout (with every other rollout whose window ends then). One window per
        rollout at a time: nothing new is asked while one is being measured or waits to be consumed (a slow
        source then delays the analysis, it never piles queries up)."""
        rid = rollout_id(rollout)
        if rid in self._inflight or rid in self._results:
            return
        current = self._wanted.get(rid)
        if current is not None and current.tick == tick:
            current.rollout = rollout
            return
        self._wanted[rid] = _Wanted(key, rollout, tick)
        self._wakeup.set()

    def take(self, rollout: Rollout) -> tuple[Tick, dict[str, MetricObservation]] | None:
        """The window measured for this rollout and its observations, if any (they stay until `consumed`)."""
        return self._results.get(rollout_id(rollout))

    def consumed(self, rollout: Rollout) -> None:
        self._results.pop(rollout_id(rollout), None)

    def forget(self, rollout: Rollout) -> None:
        self._wanted.pop(rollout_id(rollout), None)
        self._results.pop(rollout_id(rollout), None)

    @property
    def pending(self) -> int:
        return len(self._wanted)

    def _next_due(self) -> datetime | None:
        return min((w.tick.end for w in self._wanted.values()), default=None)

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            due = self._next_due()
            self._wakeup.clear()
            if due is None:
                await self._wakeup.wait()
                continue
            wait = (due - self.clock()).total_seconds() + self.settle
            ran = self._ran.get(due)
            if ran is not None:
                # this window was measured already: the rollouts asking for it now came late (their reconciles
                # were queued), and more are on their way; one query per template serves them all, so gather
                # them for a moment instead of one tick each
                wait = max(wait, ran + self.coalesce - asyncio.get_running_loop().time())
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # not wait_for: it can swallow a cancellation on 3.11
                        await self._wakeup.wait()
                continue
            await self.run_due(due)

    def _take_due(self, end: datetime) -> dict[RolloutId, _Wanted]:
        batch = {rid: w for rid, w in self._wanted.items() if w.tick.end == end}
        for rid, wanted in batch.items():
            del self._wanted[rid]
            self._inflight[rid] = wanted.tick
        return batch

    async def run_due(self, end: datetime) -> None:
        """Measure every rollout whose window ends at `end`, in one tick."""
        loop = asyncio.get_running_loop()
        self._ran = {e: t for e, t in self._ran.items() if loop.time() - t < _RAN_MEMORY}
        self._ran[end] = loop.time()
        await self._measure(end, self._take_due(end))

    async def _measure(self, end: datetime, batch: dict[RolloutId, _Wanted]) -> None:
        requests: dict[RolloutId, list[AnalysisRequest]] = {
            rid: analysis_requests(
                w.rollout, w.tick, default_dialect=self.default_dialect, source_dialect=self.source_dialect
            )
            for rid, w in batch.items()
        }
        flat = [r for reqs in requests.values() for r in reqs]
        started = asyncio.get_running_loop().time()
        answers: Mapping[AnalysisRequest, Answer] = {}
        try:
            with tracing.span("analysis.tick", {"window_end": end.isoformat(), "rollouts": len(batch)}):
                answers = await self.measure(flat) if flat else {}
        except Exception:  # measurement must not kill the scheduler: the rollouts get errors, not promotions
            log.exception("analysis tick failed", end=end.isoformat(), rollouts=len(batch))
        report = TickReport(
            end, len(batch), len(plan_tick(flat).batches), asyncio.get_running_loop().time() - started
        )
        self.reports = [*self.reports[-99:], report]
        if self.on_tick is not None:
            self.on_tick(report)
        log.info(
            "analysis tick",
            end=end.isoformat(),
            rollouts=report.rollouts,
            queries=report.queries,
            seconds=round(report.seconds, 3),
        )
        for rid, wanted in batch.items():
            if self._inflight.get(rid) == wanted.tick:
                del self._inflight[rid]
            self._results[rid] = (wanted.tick, observations_of(requests[rid], answers, wanted.tick))
            self.notify(wanted.key)
