"""The controller's own /metrics (prometheus-client), in a registry of its own (two controllers in one
process, as in tests, do not share counters).

Counters and histograms are updated as things happen; the per-rollout gauges (rollouts by phase, canary
weight, last analysis values and thresholds) are read from the Rollout cache at each scrape, so they are
always what the cluster says."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rollout.analysis.source import QueryStats
from rollout.api.rollout import Phase, Rollout

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# a window's answer is due a settle wait after its end; seconds matter there, not milliseconds
ANSWERED_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0)


class RolloutCollector(Collector):
    def __init__(self, rollouts: Callable[[], Iterable[Rollout]]) -> None:
        self._rollouts = rollouts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        items = list(self._rollouts())
        by_phase = GaugeMetricFamily("knrollout_rollouts", "Rollout objects by phase.", labels=["phase"])
        tally = Tally(r.status.phase for r in items)
        for phase in Phase:
            by_phase.add_metric([phase.value], tally.get(phase, 0))
        yield by_phase
        labels = ["namespace", "target", "rollout"]
        weight = GaugeMetricFamily(
            "knrollout_rollout_canary_weight", "Percent planned for the candidate.", labels=labels
        )
        step = GaugeMetricFamily("knrollout_rollout_step", "Index of the current step.", labels=labels)
        applied = GaugeMetricFamily(
            "knrollout_rollout_traffic_applied", "1 when Knative serves the planned split.", labels=labels
        )
        mlabels = [*labels, "metric", "revision"]
        value = GaugeMetricFamily(
            "knrollout_analysis_value", "Last analysed value of a metric (canary or stable).", labels=mlabels
        )
        threshold = GaugeMetricFamily(
            "knrollout_analysis_threshold", "Threshold of a metric.", labels=[*labels, "metric", "bound"]
        )
        verdict = GaugeMetricFamily(
            "knrollout_analysis_verdict",
            "Last verdict of a metric (1 for the current one).",
            labels=[*labels, "metric", "verdict"],
        )
        deadline = GaugeMetricFamily(
            "knrollout_rollout_deadline_timestamp_seconds",
            "When the running rollout's deadline (its policy's deadlines.rollout) passes, in Unix seconds.",
            labels=labels,
        )
        for r in items:
            if r.status.phase.terminal:
                continue
            base = [r.metadata.namespace or "", r.spec.target.name, r.metadata.name]
            weight.add_metric(base, r.status.canary_weight)
            step.add_metric(base, r.status.current_step)
            applied.add_metric(base, 1 if r.status.traffic_applied else 0)
            if r.status.started_at is not None:
                seconds = r.spec.policy.spec.deadlines.rollout
                deadline.add_metric(base, r.status.started_at.timestamp() + seconds)
            for m in r.status.analysis:
                if m.value is not None:
                    value.add_metric([*base, m.name, "canary"], m.value)
                if m.stable_value is not None:
                    value.add_metric([*base, m.name, "stable"], m.stable_value)
                if m.threshold_max is not None:
                    threshold.add_metric([*base, m.name, "max"], m.threshold_max)
                if m.threshold_min is not None:
                    threshold.add_metric([*base, m.name, "min"], m.threshold_min)
                verdict.add_metric([*base, m.name, m.verdict.value], 1)
        yield from (weight, step, applied, deadline, value, threshold, verdict)


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "knrollout_decisions_total",
            "Decisions taken for rollouts, by target and outcome (the transition's reason, or Hold).",
            ["namespace", "target", "outcome"],
            registry=r,
        )
        self.reconciles = Histogram(
            "knrollout_reconcile_duration_seconds",
            "Time spent in one reconcile.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reconcile_errors = Counter(
            "knrollout_reconcile_errors_total",
            "Reconciles that failed (retried with backoff).",
            ["kind", "error"],
            registry=r,
        )
        self.notifications = Counter(
            "knrollout_notifications_total",
            "Notification deliveries by destination type and outcome: delivered, failed (after its retries), "
            "refused (a destination the admins do not allow) or dropped (the queue was full).",
            ["type", "outcome"],
            registry=r,
        )
        self.notifications_in_flight = Gauge(
            "knrollout_notifications_in_flight", "Notification deliveries running or waiting.", registry=r
        )
        self.kube_requests = Histogram(
            "knrollout_kube_request_duration_seconds",
            "Kubernetes API requests.",
            ["verb", "resource", "code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.kube_errors = Counter(
            "knrollout_kube_request_errors_total",
            "Kubernetes API requests that failed.",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.prometheus_queries = Histogram(
            "knrollout_prometheus_query_duration_seconds",
            "Prometheus queries (retries included).",
            ["kind", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prometheus_errors = Counter(
            "knrollout_prometheus_query_errors_total",
            "Prometheus queries that failed.",
            ["kind", "error"],
            registry=r,
        )
        self.analysis_ticks = Counter(
            "knrollout_analysis_ticks_total", "Analysis ticks run (one batch of queries each).", registry=r
        )
        self.analysis_answered = Histogram(
            "knrollout_analysis_answered_seconds",
            "From an analysis window's end to its batched queries answered (the settle wait included), once "
            "per rollout measured.",
            buckets=ANSWERED_BUCKETS,
            registry=r,
        )
        self.analysis_queries = Histogram(
            "knrollout_analysis_queries_per_tick",
            "Queries sent at one analysis tick.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128),
            registry=r,
        )
        self.traffic_writes = Counter(
            "knrollout_traffic_writes_total", "spec.traffic writes, by outcome.", ["outcome"], registry=r
        )
        self.min_scale_writes = Counter(
            "knrollout_prewarm_writes_total",
            "Pre-warm min-scale writes on candidate Revisions, by outcome (held, restored, failed).",
            ["outcome"],
            registry=r,
        )
        self.drift = Counter(
            "knrollout_traffic_drift_corrected_total",
            "spec.traffic rewrites by others that were undone.",
            registry=r,
        )
        self.leader = Gauge(
            "knrollout_leader", "1 while this replica holds the lease (with shards: any).", registry=r
        )
        self.shard_held = Gauge(
            "knrollout_shard_held", "1 while this replica holds the shard's lease.", ["shard"], registry=r
        )
        self.queue_depth = Gauge("knrollout_workqueue_depth", "Keys waiting to be reconciled.", registry=r)
        self.events_queued = Gauge(
            "knrollout_events_queued", "Events recorded and not yet sent to the API server.", registry=r
        )

    def watch_rollouts(self, rollouts: Callable[[], Iterable[Rollout]]) -> None:
        self.registry.register(RolloutCollector(rollouts))

    def observe_request(self, verb: str, resource: str, code: str, seconds: float) -> None:
        self.kube_requests.labels(verb, resource, code).observe(seconds)
        if code != "2xx":
            self.kube_errors.labels(verb, resource, code).inc()

    def observe_tick(self, rollouts: int, queries: int, waited: float) -> None:
        """One analysis tick: `rollouts` measured with `queries`, answered `waited` seconds after the window's
        end. The wait is observed once per rollout: a late tick measuring three stragglers weighs three, not
        as much as the thousand measured on time."""
        self.analysis_ticks.inc()
        self.analysis_queries.observe(queries)
        waited = max(waited, 0.0)
        for _ in range(rollouts):
            self.analysis_answered.observe(waited)

    def observe_query(self, stats: QueryStats) -> None:
        self.prometheus_queries.labels(stats.kind, stats.outcome).observe(stats.seconds)
        if stats.outcome != "ok":
            self.prometheus_errors.labels(stats.kind, stats.error or "error").inc()
