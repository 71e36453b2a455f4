"""Planning a tick: one query per (source, template, window) for all rollouts, and answers routed back."""

from __future__ import annotations

from collections.abc import Mapping

from rollout.analysis.batching import AnalysisRequest, plan_tick, run_tick
from rollout.analysis.dialects import KNATIVE_CLASSIC, KNATIVE_OTEL
from rollout.analysis.keys import RevisionKey
from rollout.analysis.source import BuiltinQuery, CustomQuery, QueryBatch, SourceRef
from rollout.api.common import SecretKeyRef
from rollout.api.policy import BuiltinMetric
from rollout.api.source import BearerToken, MetricSource, PrometheusSource
from rollout.engine.observations import Measurement, MeasurementError, NoData, RequestCounts, Scalar

PROM = SourceRef.of(MetricSource(prometheus=PrometheusSource(address="http://prometheus:9090")), "shop")


def _builtin(ns: str, svc: str, canary: str, stable: str, **kw: object) -> AnalysisRequest:
    fields: dict[str, object] = {
        "rollout": f"{ns}/{svc}",
        "metric": "error-rate",
        "source": PROM,
        "namespace": ns,
        "service": svc,
        "canary": canary,
        "stable": stable,
        "window_seconds": 60.0,
        "builtin": BuiltinMetric.ERROR_RATE,
        "dialect": KNATIVE_CLASSIC,
    }
    fields.update(kw)
    return AnalysisRequest(**fields)  # type: ignore[arg-type]


def _custom(ns: str, svc: str, canary: str, stable: str, template: str) -> AnalysisRequest:
    return _builtin(ns, svc, canary, stable, builtin=None, dialect=None, template=template, metric="custom")


def test_one_batch_serves_many_rollouts() -> None:
    requests = [_builtin(f"ns{i}", "web", f"web-{i}2", f"web-{i}1") for i in range(50)]
    plan = plan_tick(requests)
    assert len(plan.batches) == 1
    _, batch = plan.batches[0]
    assert isinstance(batch, BuiltinQuery) and len(batch.revisions) == 100


def test_batches_split_by_metric_window_dialect_and_source() -> None:
    secret_spec = PrometheusSource(
        address="http://prometheus:9090",
        bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="t", key="k")),
    )
    requests = [
        _builtin("a", "web", "c", "s"),
        _builtin("b", "web", "c", "s"),  # same batch as the first
        _builtin("a", "web", "c", "s", builtin=BuiltinMetric.LATENCY, metric="latency"),
        _builtin("a", "web", "c", "s", window_seconds=120.0),
        _builtin("a", "web", "c", "s", dialect=KNATIVE_OTEL),
        # Sources reading a namespace's Secrets are never shared across namespaces.
        _builtin("a", "web", "c", "s", source=SourceRef.of(MetricSource(prometheus=secret_spec), "a")),
        _builtin("b", "web", "c", "s", source=SourceRef.of(MetricSource(prometheus=secret_spec), "b")),
    ]
    assert len(plan_tick(requests).batches) == 6


def test_custom_templates_are_deduplicated_by_rendered_text() -> None:
    per_revision = 'sum(x{ns="{{ namespace }}", rev="{{ revision }}"})'
    shared = 'sum(y{ns="{{ namespace }}", svc="{{ service }}"})'
    requests = [
        _custom("shop", "web", "web-2", "web-1", per_revision),
        _custom("shop", "web", "web-2", "web-1", shared),
        # Another metric with the same template and revisions adds no query.
        _custom("shop", "web", "web-2", "web-1", per_revision),
    ]
    plan = plan_tick(requests)
    texts = sorted(b.promql for _, b in plan.batches if isinstance(b, CustomQuery))
    assert texts == [
        'sum(x{ns="shop", rev="web-1"})',
        'sum(x{ns="shop", rev="web-2"})',
        'sum(y{ns="shop", svc="web"})',
    ]


class FakeSource:
    """Answers builtin batches with counts derived from the revision name; records the batches."""

    def __init__(self) -> None:
        self.batches: list[QueryBatch] = []

    async def query(self, batch: QueryBatch) -> Mapping[RevisionKey, Measurement]:
        self.batches.append(batch)
        if isinstance(batch, CustomQuery):
            return dict.fromkeys(batch.revisions, Scalar(float(len(batch.promql))))
        out: dict[RevisionKey, Measurement] = {}
        for key in batch.revisions:
            if key.revision == "gone":
                continue  # the source forgot one: the request gets an error, not a crash
            out[key] = NoData() if key.revision.endswith("new") else RequestCounts(len(key.namespace), 0)
        return out


class BrokenSource:
    async def query(self, batch: QueryBatch) -> Mapping[RevisionKey, Measurement]:
        raise RuntimeError("bug")


async def test_run_tick_routes_answers_back() -> None:
    source = FakeSource()
    a = _builtin("ab", "web", "web-new", "web-old")
    b = _builtin("abcd", "web", "web-new", "gone")
    bad = _custom("ab", "web", "web-new", "web-old", "x{a={{ revision }}}")  # unquoted: cannot render
    answers = await run_tick([a, b, bad], lambda ref: source)
    assert len(source.batches) == 1
    assert answers[a].canary == NoData() and answers[a].stable == RequestCounts(2, 0)
    forgotten, unrenderable = answers[b].stable, answers[bad].canary
    assert isinstance(forgotten, MeasurementError) and "no answer" in forgotten.message
    assert isinstance(unrenderable, MeasurementError) and "outside a string" in unrenderable.message


async def test_a_raising_source_only_fails_its_own_batches() -> None:
    good, broken = FakeSource(), BrokenSource()
    other = SourceRef.of(MetricSource(prometheus=PrometheusSource(address="http://other:9090")), "x")
    a = _builtin("ab", "web", "c", "s")
    b = _builtin("ab", "web", "c", "s", source=other)
    answers = await run_tick([a, b], lambda ref: broken if ref == other else good)
    assert answers[a].canary == RequestCounts(2, 0)
    failed = answers[b].canary
    assert isinstance(failed, MeasurementError) and "bug" in failed.message


def test_a_latency_batch_reads_the_union_of_its_requests_buckets() -> None:
    latency = {"builtin": BuiltinMetric.LATENCY, "metric": "latency"}
    plan = plan_tick(
        [
            _builtin("a", "web", "c", "s", buckets=(0.06, 0.35), **latency),
            _builtin("b", "web", "c", "s", buckets=(0.15, 0.35), **latency),
        ]
    )
    ((_, batch),) = plan.batches
    assert isinstance(batch, BuiltinQuery) and batch.buckets == frozenset({0.06, 0.15, 0.35})
    # one rollout whose judges have not chosen their thresholds yet needs every bucket
    plan = plan_tick(
        [
            _builtin("a", "web", "c", "s", buckets=(0.06,), **latency),
            _builtin("b", "web", "c", "s", **latency),
        ]
    )
    ((_, batch),) = plan.batches
    assert isinstance(batch, BuiltinQuery) and batch.buckets is None
    # error rates have no buckets
    ((_, counts),) = plan_tick([_builtin("a", "web", "c", "s", buckets=(0.06,))]).batches
    assert isinstance(counts, BuiltinQuery) and counts.buckets is None
