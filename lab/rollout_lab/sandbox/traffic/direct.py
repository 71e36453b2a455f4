"""The sandbox's own metrics path, for machines without Prometheus: the generator's request outcomes kept per
revision and second, answered through the same `MetricProvider` seam the Prometheus adapter implements.

It sees what queue-proxy and the activator would count (client-visible 5xx, queue-proxy latency), with no
scrape and no lag — a shortcut, said plainly wherever it is used (`rollout demo` prints it)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from rollout.analysis.keys import RevisionKey
from rollout.analysis.source import BuiltinQuery, QueryBatch
from rollout.api.policy import BuiltinMetric
from rollout.engine.observations import LatencyHistogram, Measurement, MeasurementError, NoData, RequestCounts
from rollout.knative.dialects import CLASSIC_LATENCY_BUCKETS_MS
from rollout_lab.sandbox.traffic.exporters import Outcome
from rollout_lab.sandbox.traffic.exposition import Registry

EDGES_S: tuple[float, ...] = tuple(ms / 1000.0 for ms in CLASSIC_LATENCY_BUCKETS_MS)


@dataclass
class _Second:
    requests: int = 0
    failures: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(EDGES_S) + 1))  # per bucket, last = +Inf


class OutcomeWindows:
    """An exporter (it plugs into the traffic generator next to the Prometheus ones) that keeps per-second
    counts per (namespace, revision) for `keep_seconds`."""

    def __init__(self, now: Callable[[], float], keep_seconds: float = 3600.0) -> None:
        self.registry = Registry()  # renders nothing: these counts are not exposed on /metrics
        self._now = now
        self._keep = keep_seconds
        self._data: dict[RevisionKey, dict[int, _Second]] = defaultdict(dict)

    def record(self, outcome: Outcome) -> None:
        second = int(self._now())
        cell = self._data[RevisionKey(outcome.namespace, outcome.revision)].setdefault(second, _Second())
        cell.requests += 1
        if outcome.code >= 500:
            cell.failures += 1
        cell.buckets[bisect.bisect_left(EDGES_S, outcome.proxy_latency)] += 1

    def forget_pods(self, alive: Collection[str]) -> int:
        horizon = int(self._now() - self._keep)
        for seconds in self._data.values():
            for old in [s for s in seconds if s < horizon]:
                del seconds[old]
        return 0

    def window(self, key: RevisionKey, start: float, end: float) -> list[_Second]:
        seconds = self._data.get(key, {})
        return [cell for s, cell in seconds.items() if start <= s < end]


class DirectMetricSource:
    """`MetricProvider` over `OutcomeWindows`: builtin metrics only (custom PromQL needs a Prometheus)."""

    def __init__(self, windows: OutcomeWindows, now: Callable[[], float]) -> None:
        self.windows = windows
        self._now = now

    async def query(self, batch: QueryBatch) -> Mapping[RevisionKey, Measurement]:
        if not isinstance(batch, BuiltinQuery):
            error = MeasurementError("custom PromQL needs a Prometheus; the sandbox's direct path has none")
            return dict.fromkeys(batch.revisions, error)
        end = batch.at.timestamp() if batch.at is not None else self._now()
        start = end - batch.window_seconds
        out: dict[RevisionKey, Measurement] = {}
        for key in batch.revisions:
            cells = self.windows.window(key, start, end)
            requests = sum(c.requests for c in cells)
            if requests == 0:
                out[key] = NoData(f"no requests to {key} in the window")
            elif batch.metric == BuiltinMetric.ERROR_RATE:
                out[key] = RequestCounts(requests, sum(c.failures for c in cells))
            else:
                per_bucket = [sum(c.buckets[i] for c in cells) for i in range(len(EDGES_S) + 1)]
                cumulative, running = [], 0
                for count in per_bucket[:-1]:
                    running += count
                    cumulative.append(running)
                out[key] = LatencyHistogram(EDGES_S, tuple(cumulative), requests)
        return out
