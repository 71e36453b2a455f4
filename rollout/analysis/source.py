"""The seam between the analysis and a metrics backend: what is asked (a query batch) and the answer
(one Measurement per revision: a value, NoData or MeasurementError — never an exception).

A batch serves every rollout due at one analysis tick that needs the same thing from the same source:

- `BuiltinQuery`: one builtin metric (error rate or latency) of one dialect over one window, for a set of
  (namespace, revision) pairs. The source answers with one grouped query per metric family, not one per
  revision.
- `CustomQuery`: one rendered PromQL text, which must give one number. Rollouts that render the same text
  share it; its answer is given for every revision that asked for it.

A revision the backend has nothing for is NoData; a failed query is MeasurementError for every revision of
the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rollout.analysis.auth import uses_secrets
from rollout.analysis.dialects import DialectSpec
from rollout.analysis.keys import RevisionKey
from rollout.api.policy import BuiltinMetric
from rollout.api.source import MetricSource as PolicyMetricSource
from rollout.api.source import PrometheusSource
from rollout.engine.observations import Measurement


@dataclass(frozen=True)
class SourceRef:
    """Which backend a query goes to, as a hashable key for batching: a ClusterMetricSource by name
    (`granted`: the admins' address and credentials, shared by every namespace it allows), or the policy's own
    Prometheus settings, with the namespace when those settings read that namespace's Secrets (two
    namespaces' Secrets of the same name are different credentials, so such queries are never shared; and a
    policy's own address is bounded per namespace)."""

    spec_json: str = ""
    namespace: str | None = None
    granted: str | None = None

    @classmethod
    def of(cls, source: PolicyMetricSource, namespace: str) -> SourceRef:
        if source.ref is not None:
            return cls(granted=source.ref)
        spec = source.prometheus
        # a policy's own address is that namespace's: never shared, so its load is counted against it
        private = uses_secrets(spec) or spec.address is not None
        return cls(spec.model_dump_json(by_alias=True), namespace if private else None)

    @property
    def spec(self) -> PrometheusSource:
        return PrometheusSource.model_validate_json(self.spec_json or "{}")


@dataclass(frozen=True)
class BuiltinQuery:
    """A builtin metric over the window [at - window, at] for a set of revisions."""

    metric: BuiltinMetric
    dialect: DialectSpec
    window_seconds: float
    revisions: frozenset[RevisionKey]
    at: datetime | None = None  # end of the window; None: the source's now
    # latency: the bucket upper bounds (seconds) to read, +Inf always; None: every bucket
    buckets: frozenset[float] | None = None


@dataclass(frozen=True)
class CustomQuery:
    """A rendered custom PromQL text (already escaped) evaluated at `at`; the answer holds for `revisions`."""

    promql: str
    revisions: frozenset[RevisionKey]
    at: datetime | None = None


QueryBatch = BuiltinQuery | CustomQuery


class MetricProvider(Protocol):
    """Where measurements come from (Prometheus in the controller; the simulator may bring its own)."""

    async def query(self, batch: QueryBatch) -> Mapping[RevisionKey, Measurement]:
        """One Measurement for every revision of the batch. Never raises for a backend failure."""
        ...


@dataclass(frozen=True)
class QueryStats:
    """One query sent to a backend (after retries), for the controller's own metrics and logs."""

    source: str  # address of the backend
    kind: str  # "builtin:<dialect>:<metric family>" or "custom"
    seconds: float  # wall time including retries
    attempts: int
    outcome: str  # "ok" or "error"
    error: str = ""  # error class when outcome is "error": timeout, connection, http_5xx, http_4xx, ...


# Told about every query; the controller turns this into Prometheus histograms and counters.
QueryObserver = Callable[[QueryStats], None]
