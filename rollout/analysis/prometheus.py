"""The Prometheus MetricProvider: batches to instant queries through prometheus-api-client, with retries
bounded in total time, and every outcome a Measurement.

prometheus-api-client is synchronous (requests). Each attempt runs in a worker thread of a bounded
executor (shared by all sources of a controller), so a slow Prometheus holds at most that many threads and
never blocks the event loop; `asyncio.wait_for` bounds every attempt even if a socket trickles bytes past
requests' per-read timeout (the thread then finishes on its own and its answer is dropped).

Retries (tenacity): on timeouts, connection errors, HTTP 5xx and 429 (waiting for Retry-After when given),
never on other 4xx (a bad query stays bad). The whole query, waits included, stays within
`RetryPolicy.total_seconds`: each attempt gets the smaller of the source's timeout and what is left, and
no retry starts if its wait would cross the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential_jitter

from rollout import tracing
from rollout.analysis.auth import AuthError, Connection, SecretReader, resolve_connection
from rollout.analysis.builtins import family_queries, measurements
from rollout.analysis.granted import GrantedLookup, GrantedMetricSource, missing_source
from rollout.analysis.keys import RevisionKey
from rollout.analysis.results import ResultShapeError, Sample, parse_single_number, parse_vector
from rollout.analysis.source import (
    BuiltinQuery,
    MetricProvider,
    QueryBatch,
    QueryObserver,
    QueryStats,
    SourceRef,
)
from rollout.analysis.transport import PromClient, QueryFailure, build_client, instant_query
from rollout.api.source import ClusterMetricSourceSpec, PrometheusSource
from rollout.engine.observations import Measurement, MeasurementError, NoData, Scalar

log = structlog.get_logger(__name__)

# Below this much budget left, another attempt is not worth starting.
_MIN_ATTEMPT_SECONDS = 0.05
# Slack over the HTTP timeout before an attempt is abandoned by the event loop.
_ABANDON_SLACK_SECONDS = 1.0
_MAX_CACHED_CLIENTS = 4


@dataclass(frozen=True)
class RetryPolicy:
    total_seconds: float = 20.0  # one query, all attempts and waits included
    max_attempts: int = 4
    initial_backoff: float = 0.25
    max_backoff: float = 4.0


class PrometheusMetricSource:
    """MetricProvider for one Prometheus: a policy's own `metricSource.prometheus` as seen from its namespace,
    or (`granted`) an admin's ClusterMetricSource whose Secrets live in `namespace`.

    An attempt holds one of `slots` (shared with the other sources of the same tenant) from before its thread
    starts until the thread really ends (an attempt abandoned by its timeout still holds it), so one tenant's
    slow Prometheus cannot take the threads every other source needs."""

    def __init__(
        self,
        spec: PrometheusSource,
        namespace: str,
        *,
        secrets: SecretReader,
        default_address: str | None = None,
        executor: Executor | None = None,
        retry: RetryPolicy | None = None,
        observer: QueryObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        granted: bool = False,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self._spec = spec
        self._granted = granted
        self._slots = slots or asyncio.Semaphore(4)
        self._namespace = namespace
        self._secrets = secrets
        self._default_address = default_address
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="prometheus")
        self._retry = retry or RetryPolicy()
        self._observer = observer
        self._clock = clock
        self._clients: dict[Connection, PromClient] = {}

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def query(self, batch: QueryBatch) -> Mapping[RevisionKey, Measurement]:
        try:
            return await self._query(batch)
        except Exception as exc:  # the seam's promise: a value, never an exception
            log.exception("prometheus_source_failed", namespace=self._namespace)
            return _all(batch, MeasurementError(f"unexpected failure: {exc!r}"))

    async def _query(self, batch: QueryBatch) -> Mapping[RevisionKey, Measurement]:
        try:
            connection = await resolve_connection(
                self._spec, self._namespace, self._secrets, self._default_address, granted=self._granted
            )
        except AuthError as exc:
            log.warning("prometheus_auth_unresolved", namespace=self._namespace, error=str(exc))
            return _all(batch, MeasurementError(str(exc)))
        try:
            client = self._client(connection)
        except (ssl.SSLError, ValueError, OSError) as exc:
            message = f"metricSource.prometheus.tls: unusable certificate or key: {exc}"
            log.warning("prometheus_tls_unusable", namespace=self._namespace, error=str(exc))
            return _all(batch, MeasurementError(message))
        if isinstance(batch, BuiltinQuery):
            return await self._builtin(client, connection, batch)
        outcome = await self._run(client, connection, batch.promql, batch.at, "custom")
        if isinstance(outcome, QueryFailure):
            return _all(batch, MeasurementError(f"Prometheus at {connection.address}: {outcome.summary()}"))
        try:
            value = parse_single_number(outcome)
        except ResultShapeError as exc:
            return _all(batch, MeasurementError(f"{exc} (query: {batch.promql})"))
        return _all(batch, NoData("the query returned no value") if value is None else Scalar(value))

    async def _builtin(
        self, client: PromClient, connection: Connection, batch: BuiltinQuery
    ) -> Mapping[RevisionKey, Measurement]:
        queries = family_queries(batch)
        kind = f"builtin:{batch.dialect.dialect.value}"
        outcomes = await asyncio.gather(
            *(self._run(client, connection, q.promql, batch.at, f"{kind}:{q.component}") for q in queries)
        )
        rows: dict[str, list[Sample]] = {}
        for q, outcome in zip(queries, outcomes, strict=True):
            if isinstance(outcome, QueryFailure):
                return _all(
                    batch, MeasurementError(f"Prometheus at {connection.address}: {outcome.summary()}")
                )
            try:
                rows[q.metric] = parse_vector(outcome)
            except ResultShapeError as exc:
                return _all(batch, MeasurementError(f"{q.component} ({q.metric}): {exc}"))
        return measurements(batch, rows)

    def _client(self, connection: Connection) -> PromClient:
        client = self._clients.get(connection)
        if client is None:
            if len(self._clients) >= _MAX_CACHED_CLIENTS:  # rotated credentials: drop the oldest client
                oldest = next(iter(self._clients))
                self._clients.pop(oldest).close()
            client = self._clients[connection] = build_client(connection)
        return client

    async def _run(
        self,
        client: PromClient,
        connection: Connection,
        promql: str,
        at: datetime | None,
        kind: str,
    ) -> object | QueryFailure:
        """The query's result, or the last failure once retries are exhausted or the budget is spent."""
        started = self._clock()
        deadline = started + self._retry.total_seconds
        loop = asyncio.get_running_loop()
        attempts = 0

        async def attempt() -> object:
            nonlocal attempts
            attempts += 1
            remaining = deadline - self._clock()
            if remaining < _MIN_ATTEMPT_SECONDS:
                raise QueryFailure("timeout", "the query's time budget is spent", False)
            per_try = min(connection.timeout, remaining)
            try:
                async with asyncio.timeout(remaining):
                    await self._slots.acquire()
            except TimeoutError:
                raise QueryFailure("timeout", "every query slot of this source is busy", False) from None
            done = self._executor.submit(instant_query, client, promql, at, per_try)
            done.add_done_callback(lambda _: _release_soon(loop, self._slots))  # when the thread is done
            future = asyncio.wrap_future(done, loop=loop)
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (shutdown)
                async with asyncio.timeout(min(per_try + _ABANDON_SLACK_SECONDS, remaining)):
                    return await future
            except TimeoutError:
                raise QueryFailure("timeout", f"no answer within {per_try:.1f}s", True) from None

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry.max_attempts) | _StopAtDeadline(deadline, self._clock),
            wait=_wait_for(self._retry),
            retry=retry_if_exception(lambda e: isinstance(e, QueryFailure) and e.transient),
            reraise=True,
        )
        outcome: object | QueryFailure
        where = {"source": connection.address, "kind": kind, "promql": promql[:1024]}
        with tracing.span("prometheus.query", where) as current:
            try:
                outcome = await retrying(attempt)
            except QueryFailure as exc:
                outcome = exc
            failure = outcome.kind if isinstance(outcome, QueryFailure) else None
            tracing.annotate(current, {"attempts": attempts, "error": failure})
        seconds = self._clock() - started
        failed = isinstance(outcome, QueryFailure)
        if isinstance(outcome, QueryFailure):
            log.warning(
                "prometheus_query_failed",
                source=connection.address,
                kind=kind,
                attempts=attempts,
                seconds=round(seconds, 3),
                error=outcome.kind,
                message=outcome.message,
            )
        self._observe(
            QueryStats(
                source=connection.address,
                kind=kind,
                seconds=seconds,
                attempts=attempts,
                outcome="error" if failed else "ok",
                error=outcome.kind if isinstance(outcome, QueryFailure) else "",
            )
        )
        return outcome

    def _observe(self, stats: QueryStats) -> None:
        if self._observer is None:
            return
        try:
            self._observer(stats)
        except Exception:  # a metrics hook must never break a measurement
            log.exception("query_observer_failed")


class PrometheusSources:
    """The MetricProvider for each SourceRef of a tick (`batching.run_tick`'s `sources`), created on first use
    and kept; all share one bounded executor. Close it when the controller stops.

    A granted ref (a ClusterMetricSource) is looked up through `granted` at every query; without a lookup
    every granted ref answers with an error. Threads: the sources a namespace's policies name themselves
    share `own_in_flight` of them; each admin's source (a ClusterMetricSource, the controller's default) has
    `granted_in_flight` of its own."""

    def __init__(
        self,
        secrets: SecretReader,
        *,
        default_address: str | None = None,
        granted: GrantedLookup | None = None,
        max_threads: int = 16,
        own_in_flight: int = 2,
        granted_in_flight: int = 8,
        retry: RetryPolicy | None = None,
        observer: QueryObserver | None = None,
    ) -> None:
        self._secrets = secrets
        self._default_address = default_address
        self._granted: GrantedLookup = granted or missing_source
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="prometheus")
        self._retry = retry
        self._observer = observer
        self._own_in_flight = own_in_flight
        self._granted_in_flight = granted_in_flight
        self._sources: dict[SourceRef, PrometheusMetricSource | GrantedMetricSource] = {}
        self._tenant_slots: dict[str, asyncio.Semaphore] = {}  # namespace -> its own sources' share

    def __call__(self, ref: SourceRef) -> MetricProvider:
        source = self._sources.get(ref)
        if source is None:
            if ref.granted is not None:
                source = GrantedMetricSource(ref.granted, self._granted, self._for_granted)
            else:
                source = self._prometheus(ref.spec, ref.namespace or "", granted=False)
            self._sources[ref] = source
        return source

    def _for_granted(self, spec: ClusterMetricSourceSpec) -> PrometheusMetricSource:
        return self._prometheus(spec.prometheus, spec.secret_namespace or "", granted=True)

    def _prometheus(self, spec: PrometheusSource, namespace: str, granted: bool) -> PrometheusMetricSource:
        if granted or spec.address is None:  # the admins' Prometheus
            slots = asyncio.Semaphore(self._granted_in_flight)
        else:
            slots = self._tenant_slots.setdefault(namespace, asyncio.Semaphore(self._own_in_flight))
        return PrometheusMetricSource(
            spec,
            namespace,  # for a policy's own source: "" when it reads no Secrets
            secrets=self._secrets,
            default_address=self._default_address,
            executor=self._executor,
            retry=self._retry,
            observer=self._observer,
            granted=granted,
            slots=slots,
        )

    def forget(self, ref: SourceRef) -> None:
        """Drop a source no policy uses any more (its clients and connections)."""
        source = self._sources.pop(ref, None)
        if source is not None:
            source.close()

    def close(self) -> None:
        for source in self._sources.values():
            source.close()
        self._sources.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


class _StopAtDeadline(stop_base):
    """Stop when the next attempt would start after the deadline (Retry-After included)."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._clock = clock

    def __call__(self, state: RetryCallState) -> bool:
        return self._clock() + state.upcoming_sleep + _MIN_ATTEMPT_SECONDS >= self._deadline


def _wait_for(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(multiplier=policy.initial_backoff, max=policy.max_backoff)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, QueryFailure) and exc.retry_after is not None:
            return exc.retry_after
        return backoff(state)

    return wait


def _release_soon(loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the thread finished
        loop.call_soon_threadsafe(slots.release)


def _all(batch: QueryBatch, measurement: Measurement) -> dict[RevisionKey, Measurement]:
    return dict.fromkeys(batch.revisions, measurement)
