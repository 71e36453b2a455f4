"""OpenTelemetry traces of a real rollout in the sandbox, judged on a real Prometheus, caught by the SDK's
in-memory exporter: reconciles with their decisions and Kubernetes writes beneath, analysis ticks with their
Prometheus queries beneath; and nothing at all while tracing is off."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rollout import tracing
from rollout.api.rollout import Phase
from tests.integration.harness import NEEDS_PROMETHEUS, controller, eventually, finished, onboard, sandbox

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20, "bake": "3s"}]}},
    "analysis": {
        "interval": "2s",
        "minRequests": 5,
        "metrics": [{"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}}],
    },
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)
        provider.shutdown()


def at(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def parent_of(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return by_id.get(span.parent.span_id) if span.parent is not None else None


@NEEDS_PROMETHEUS[0]
@NEEDS_PROMETHEUS[1]
async def test_a_rollout_is_traced_from_reconcile_to_write_and_tick_to_query(
    spans: InMemorySpanExporter,
) -> None:
    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        cluster.apply_policy("canary", POLICY)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=60)
    assert done.status.phase == Phase.SUCCEEDED, done.status.message
    got = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in got}
    decides = [s for s in got if s.name == "rollout.decide" and at(s)["rollout"] == "hello-00002.1"]
    reasons = [at(s).get("reason") for s in decides]
    assert "CandidateReady" in reasons and "Promoted" in reasons
    for d in decides:
        parent = parent_of(d, by_id)
        assert parent is not None and parent.name == "reconcile" and at(parent)["name"] == "hello"
    judged = [d for d in decides if at(d).get("verdicts")]
    assert judged and all(at(d)["metrics"] == ("error-rate",) for d in judged)
    assert any(at(d)["verdicts"] == ("Pass",) for d in judged)
    promoted = next(d for d in decides if at(d)["reason"] == "Promoted")
    assert at(promoted)["weight.canary"] == 100 and at(promoted)["phase"] == "Succeeded"
    writes = [
        s
        for s in got
        if s.name.startswith("kube.") and (p := parent_of(s, by_id)) and p.name == "rollout.decide"
    ]
    resources = {at(w)["resource"] for w in writes}
    assert {"rollouts/status", "services"} <= resources, resources
    queries = [s for s in got if s.name == "prometheus.query"]
    parents = {(p.name if p is not None else None) for p in (parent_of(q, by_id) for q in queries)}
    assert queries and parents == {"analysis.tick"}
    assert any("revision_name" in str(at(q)["promql"]) for q in queries)


async def test_nothing_is_traced_while_tracing_is_off() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("other")  # a provider exists in the process, but was not installed
    assert not tracing.enabled()
    with tracing.span("reconcile", {"name": "x"}) as current:
        assert current is None
    tracing.annotate(current, {"requeue_after": 1.0})
    assert exporter.get_finished_spans() == ()
