"""Queries through a ClusterMetricSource: the admins' Prometheus, address and credentials looked up by name at
every query (an admin's edit applies at the next tick), used only for the namespaces the source allows.

The lookup is a small protocol: the controller answers from its informer cache, tests from a dictionary.
A missing or invalid source, or a namespace the source does not allow, is a MeasurementError naming the
source and the fix, never a query to some other address."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Protocol

from rollout.analysis.keys import RevisionKey
from rollout.analysis.source import MetricProvider, QueryBatch
from rollout.api.source import ClusterMetricSourceSpec
from rollout.engine.observations import Measurement, MeasurementError

# (the source's spec) -> the MetricProvider that queries it with the admins' credentials
SourceFactory = Callable[[ClusterMetricSourceSpec], MetricProvider]


class GrantedLookup(Protocol):
    def __call__(self, name: str) -> ClusterMetricSourceSpec | str:
        """The named ClusterMetricSource's spec, or why it cannot be used (one sentence with the fix)."""
        ...


class GrantedMetricSource:
    """MetricProvider for `metricSource.ref: <name>`."""

    def __init__(self, name: str, lookup: GrantedLookup, factory: SourceFactory) -> None:
        self.name = name
        self._lookup = lookup
        self._factory = factory
        self._inner: tuple[str, MetricProvider] | None = None  # (spec JSON, source) of the current spec

    def _source(self, spec: ClusterMetricSourceSpec) -> MetricProvider:
        key = spec.model_dump_json()
        if self._inner is None or self._inner[0] != key:
            self.close()
            self._inner = (key, self._factory(spec))
        return self._inner[1]

    def close(self) -> None:
        if self._inner is not None:
            close = getattr(self._inner[1], "close", None)
            if close is not None:
                close()
            self._inner = None

    async def query(self, batch: QueryBatch) -> Mapping[RevisionKey, Measurement]:
        found = self._lookup(self.name)
        if isinstance(found, str):
            return dict.fromkeys(batch.revisions, MeasurementError(found))
        allowed = frozenset(r for r in batch.revisions if found.allows(r.namespace))
        out: dict[RevisionKey, Measurement] = {
            r: MeasurementError(
                f"metricSource.ref: ClusterMetricSource {self.name} is not granted to namespace "
                f"{r.namespace} (its spec.namespaces); ask the platform admins to add it"
            )
            for r in batch.revisions - allowed
        }
        if allowed:
            out.update(await self._source(found).query(dataclasses.replace(batch, revisions=allowed)))
        return out


def missing_source(name: str) -> str:
    return (
        f"metricSource.ref: ClusterMetricSource {name} does not exist; ask the platform admins which "
        "sources are granted (kubectl get clustermetricsources)"
    )
