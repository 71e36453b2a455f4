"""One analysis tick for many rollouts: what each rollout needs, grouped into as few queries as possible.

Flagger sends one query per canary per metric at every interval. Here, every rollout due at a tick says
what it needs (`AnalysisRequest`: one policy metric, canary and stable, one window), and `plan_tick`
groups the needs:

- builtin metrics: ONE batch per (source, dialect, metric, window, evaluation time) holding every
  (namespace, revision) involved; the source answers it with one grouped query per metric family, whatever
  the number of rollouts. A latency batch reads only the buckets its requests' judges read (the union; every
  bucket as soon as one request needs them all): bucket series are most of what such a query touches;
- custom queries: a template mentioning `{{ revision }}` gives a different text per revision, and its
  single-number result cannot be split by revision afterwards, so these are rendered per revision and
  de-duplicated: ONE query per distinct rendered text (and source, time). Rollouts sharing a template and a
  revision (or templates without per-revision variables) share the query.

`run_tick` runs the batches concurrently (bounded) and hands every request its canary and stable
measurements. A batch that fails, or a source that breaks its promise and raises, gives MeasurementError
to exactly the requests that depended on it; a template that cannot be rendered gives MeasurementError to
its own request only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from rollout.analysis.dialects import DialectSpec
from rollout.analysis.keys import RevisionKey
from rollout.analysis.source import (
    BuiltinQuery,
    CustomQuery,
    MetricProvider,
    QueryBatch,
    SourceRef,
)
from rollout.api.policy import BuiltinMetric
from rollout.api.promql import TemplateError, TemplateValues, render_template
from rollout.engine.observations import Measurement, MeasurementError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AnalysisRequest:
    """One rollout's need at this tick: one policy metric, for its canary and its stable revision, over
    the window [at - window, at]. Exactly one of `builtin` (with `dialect`) or `template` is set."""

    rollout: str  # e.g. "namespace/name", for logs
    metric: str  # the policy metric's name
    source: SourceRef
    namespace: str
    service: str
    canary: str
    stable: str
    window_seconds: float
    at: datetime | None = None
    builtin: BuiltinMetric | None = None
    dialect: DialectSpec | None = None
    template: str | None = None
    buckets: tuple[float, ...] | None = None  # latency: the buckets its judges read (None: every bucket)

    def __post_init__(self) -> None:
        if (self.builtin is None) == (self.template is None):
            raise ValueError("an AnalysisRequest has exactly one of `builtin` or `template`")
        if self.builtin is not None and self.dialect is None:
            raise ValueError("a builtin AnalysisRequest needs its dialect")


@dataclass(frozen=True)
class Answer:
    canary: Measurement
    stable: Measurement


# Where one side of a request gets its measurement: (batch index, key), or a fixed value.
_Route = tuple[int, RevisionKey] | Measurement


@dataclass
class TickPlan:
    batches: list[tuple[SourceRef, QueryBatch]] = field(default_factory=list)
    routes: dict[AnalysisRequest, tuple[_Route, _Route]] = field(default_factory=dict)


def plan_tick(requests: Iterable[AnalysisRequest]) -> TickPlan:
    """Group the requests of one tick into batches (pure)."""
    builtin_keys: dict[tuple[SourceRef, DialectSpec, BuiltinMetric, float, datetime | None], set[RevisionKey]]
    builtin_keys = {}
    buckets_of: dict[object, set[float]] = {}  # a latency batch's buckets, unless it needs them all
    every_bucket: set[object] = set()
    custom_keys: dict[tuple[SourceRef, str, datetime | None], set[RevisionKey]] = {}
    pending: dict[AnalysisRequest, tuple[object, object]] = {}
    for req in requests:
        canary = RevisionKey(req.namespace, req.canary)
        stable = RevisionKey(req.namespace, req.stable)
        if req.builtin is not None:
            assert req.dialect is not None
            group = (req.source, req.dialect, req.builtin, req.window_seconds, req.at)
            builtin_keys.setdefault(group, set()).update((canary, stable))
            if req.buckets is None:
                every_bucket.add(group)
            else:
                buckets_of.setdefault(group, set()).update(req.buckets)
            pending[req] = ((group, canary), (group, stable))
            continue
        assert req.template is not None
        sides: list[object] = []
        for key in (canary, stable):
            values = TemplateValues(
                namespace=req.namespace,
                service=req.service,
                revision=key.revision,
                stable_revision=req.stable,
                canary_revision=req.canary,
                window_seconds=req.window_seconds,
            )
            try:
                text = render_template(req.template, values.as_mapping())
            except TemplateError as exc:
                sides.append(MeasurementError(f"metric {req.metric}: {exc}"))
                continue
            cgroup = (req.source, text, req.at)
            custom_keys.setdefault(cgroup, set()).add(key)
            sides.append((cgroup, key))
        pending[req] = (sides[0], sides[1])

    plan = TickPlan()
    index: dict[object, int] = {}
    for (source, dialect, metric, window, at), keys in builtin_keys.items():
        group = (source, dialect, metric, window, at)
        index[group] = len(plan.batches)
        some = metric is BuiltinMetric.LATENCY and group not in every_bucket
        buckets = frozenset(buckets_of[group]) if some else None
        plan.batches.append((source, BuiltinQuery(metric, dialect, window, frozenset(keys), at, buckets)))
    for (source, text, at), keys in custom_keys.items():
        index[(source, text, at)] = len(plan.batches)
        plan.batches.append((source, CustomQuery(text, frozenset(keys), at)))

    def route(side: object) -> _Route:
        if isinstance(side, tuple):
            group, key = side
            return (index[group], key)
        assert isinstance(side, MeasurementError)
        return side

    plan.routes = {req: (route(c), route(s)) for req, (c, s) in pending.items()}
    return plan


async def _run_batch(
    source: MetricProvider, batch: QueryBatch, limit: asyncio.Semaphore
) -> Mapping[RevisionKey, Measurement]:
    async with limit:
        try:
            return await source.query(batch)
        except Exception as exc:  # a source must not raise; if one does, only its batch suffers
            log.exception("metric_source_raised", batch=type(batch).__name__)
            return dict.fromkeys(batch.revisions, MeasurementError(f"metric source failed: {exc!r}"))


async def run_tick(
    requests: Sequence[AnalysisRequest],
    sources: Callable[[SourceRef], MetricProvider],
    *,
    concurrency: int = 8,
) -> dict[AnalysisRequest, Answer]:
    """Measure every request of one tick with as few queries as `plan_tick` allows."""
    plan = plan_tick(requests)
    limit = asyncio.Semaphore(concurrency)
    results = await asyncio.gather(*(_run_batch(sources(ref), batch, limit) for ref, batch in plan.batches))
    log.debug("analysis_tick", requests=len(requests), queries=len(plan.batches))

    def resolve(route: _Route) -> Measurement:
        if isinstance(route, tuple):
            batch_index, key = route
            found = results[batch_index].get(key)
            return found if found is not None else MeasurementError(f"the source gave no answer for {key}")
        return route

    return {req: Answer(resolve(c), resolve(s)) for req, (c, s) in plan.routes.items()}
