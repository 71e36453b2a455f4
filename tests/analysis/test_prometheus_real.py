"""The Prometheus adapter against a real Prometheus holding backfilled Knative metrics (see knative_data)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from rollout.analysis.batching import AnalysisRequest, run_tick
from rollout.analysis.dialects import DEFAULT_SPECS
from rollout.analysis.keys import RevisionKey
from rollout.analysis.prometheus import PrometheusMetricSource, PrometheusSources, RetryPolicy
from rollout.analysis.source import BuiltinQuery, CustomQuery, QueryStats, SourceRef
from rollout.analysis.transport import LONG_QUERY_BYTES
from rollout.api.policy import BuiltinMetric
from rollout.api.promql import TemplateError, TemplateValues, render_template
from rollout.api.source import Dialect, MetricSource, PrometheusSource
from rollout.engine.observations import LatencyHistogram, MeasurementError, NoData, Scalar
from tests.analysis import knative_data as kd
from tests.analysis.conftest import DECOYS, INJECTIONS, DictSecrets
from tests.analysis.prometheus_server import LocalPrometheus, free_port

pytestmark = pytest.mark.prometheus

AT = datetime.fromtimestamp(kd.AT, tz=UTC)


@pytest.fixture
def stats() -> list[QueryStats]:
    return []


@pytest.fixture
def source(prometheus: LocalPrometheus, stats: list[QueryStats]) -> Iterator[PrometheusMetricSource]:
    src = PrometheusMetricSource(
        PrometheusSource(address=prometheus.url, timeout=5.0),
        "shop",
        secrets=DictSecrets({}),
        observer=stats.append,
    )
    yield src
    src.close()


def _same(got: object, want: object) -> bool:
    if isinstance(want, NoData):
        return isinstance(got, NoData)
    return got == want


@pytest.mark.parametrize("dialect", list(Dialect))
async def test_request_counts_per_revision(
    dialect: Dialect, source: PrometheusMetricSource, stats: list[QueryStats]
) -> None:
    batch = BuiltinQuery(BuiltinMetric.ERROR_RATE, DEFAULT_SPECS[dialect], kd.WINDOW, kd.ALL_KEYS, AT)
    got = await source.query(batch)
    want = kd.expected(kd.EXPECTED_COUNTS)
    assert set(got) == set(want)
    for key, measurement in want.items():
        assert _same(got[key], measurement), (key, got[key])
    # One grouped query per metric family, whatever the number of revisions.
    assert len(stats) == (2 if DEFAULT_SPECS[dialect].activator is not None else 1)
    assert all(s.outcome == "ok" and s.attempts == 1 for s in stats)


@pytest.mark.parametrize("dialect", list(Dialect))
async def test_latency_histograms_per_revision(dialect: Dialect, source: PrometheusMetricSource) -> None:
    batch = BuiltinQuery(BuiltinMetric.LATENCY, DEFAULT_SPECS[dialect], kd.WINDOW, kd.ALL_KEYS, AT)
    got = await source.query(batch)
    want = kd.expected(kd.EXPECTED_LATENCY)
    for key, measurement in want.items():
        assert _same(got[key], measurement), (key, got[key])


@pytest.mark.parametrize("dialect", list(Dialect))
async def test_latency_reads_only_the_judged_buckets(
    dialect: Dialect, source: PrometheusMetricSource
) -> None:
    # 0.05 s and 1 s: "50" and "1000" in milliseconds, "0.05" and "1" in seconds
    buckets = frozenset({0.05, 1.0})
    batch = BuiltinQuery(BuiltinMetric.LATENCY, DEFAULT_SPECS[dialect], kd.WINDOW, kd.ALL_KEYS, AT, buckets)
    got = await source.query(batch)
    for key, full in kd.EXPECTED_LATENCY.items():
        part = got[key]
        assert isinstance(part, LatencyHistogram) and isinstance(full, LatencyHistogram), (key, part)
        assert part.edges == (0.05, 1.0) and part.total == full.total
        assert [part.slow(e) for e in part.edges] == [full.slow(e) for e in part.edges]
    assert isinstance(got[kd.MISSING], NoData)
    lacking = BuiltinQuery(
        BuiltinMetric.LATENCY, DEFAULT_SPECS[dialect], kd.WINDOW, kd.ALL_KEYS, AT, frozenset({0.05, 0.2})
    )
    stable = (await source.query(lacking))[kd.STABLE]
    assert isinstance(stable, MeasurementError) and "0.2s" in stable.message


async def test_window_before_any_data_is_no_data(source: PrometheusMetricSource) -> None:
    early = datetime.fromtimestamp(kd.T0 - 3600, tz=UTC)
    batch = BuiltinQuery(
        BuiltinMetric.ERROR_RATE, DEFAULT_SPECS[Dialect.KNATIVE_CLASSIC], kd.WINDOW, kd.ALL_KEYS, early
    )
    got = await source.query(batch)
    assert all(isinstance(m, NoData) for m in got.values())


async def test_wide_batch_without_revision_filter_gives_the_same_counts(
    source: PrometheusMetricSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More revisions than fit in a regex: the query drops the revision filter and rows are filtered here.
    monkeypatch.setattr("rollout.analysis.dialects.MAX_ALTERNATIVES", 1)
    for dialect in Dialect:
        batch = BuiltinQuery(BuiltinMetric.ERROR_RATE, DEFAULT_SPECS[dialect], kd.WINDOW, kd.ALL_KEYS, AT)
        got = await source.query(batch)
        want = kd.expected(kd.EXPECTED_COUNTS)
        assert all(_same(got[k], m) for k, m in want.items()), dialect


async def test_one_tick_many_rollouts_few_queries(prometheus: LocalPrometheus) -> None:
    stats: list[QueryStats] = []
    sources = PrometheusSources(DictSecrets({}), default_address=prometheus.url, observer=stats.append)
    ref = SourceRef.of(MetricSource(prometheus=PrometheusSource()), "shop")
    classic = DEFAULT_SPECS[Dialect.KNATIVE_CLASSIC]
    per_revision = 'sum(increase(revision_request_count{revision_name="{{ revision }}", namespace_name="{{ namespace }}"}[{{ interval }}]))'
    requests = []
    for ns, canary, stable in (("shop", kd.CANARY, kd.STABLE), ("blog", kd.MISSING, kd.OTHER_NS)):
        errors = AnalysisRequest(
            rollout=f"{ns}/web",
            metric="error-rate",
            source=ref,
            namespace=ns,
            service="web",
            canary=canary.revision,
            stable=stable.revision,
            window_seconds=kd.WINDOW,
            at=AT,
            builtin=BuiltinMetric.ERROR_RATE,
            dialect=classic,
        )
        requests += [
            errors,
            replace(errors, metric="latency", builtin=BuiltinMetric.LATENCY),
            replace(errors, metric="custom", builtin=None, dialect=None, template=per_revision),
        ]
    try:
        answers = await run_tick(requests, sources)
    finally:
        sources.close()
    # 2 families for error rate + 1 for latency serve both rollouts; the custom query runs per revision.
    assert sorted(s.kind for s in stats) == [
        "builtin:knative-classic:activator",
        "builtin:knative-classic:queue-proxy",
        "builtin:knative-classic:queue-proxy",
        *["custom"] * 4,
    ]
    shop_errors, shop_latency, shop_custom, blog_errors, _, blog_custom = (answers[r] for r in requests)
    assert (shop_errors.canary, shop_errors.stable) == (
        kd.EXPECTED_COUNTS[kd.CANARY],
        kd.EXPECTED_COUNTS[kd.STABLE],
    )
    assert shop_latency.stable == kd.EXPECTED_LATENCY[kd.STABLE]
    assert shop_custom.stable == Scalar(320.0)  # queue-proxy rows of pods a and b (see knative_data)
    assert isinstance(blog_errors.canary, NoData) and blog_errors.stable == kd.EXPECTED_COUNTS[kd.OTHER_NS]
    assert isinstance(blog_custom.canary, NoData) and blog_custom.stable == Scalar(280.0)


async def _custom(source: PrometheusMetricSource, promql: str) -> object:
    key = RevisionKey("shop", "x")
    return (await source.query(CustomQuery(promql, frozenset({key}), AT)))[key]


async def test_custom_template_rendered_and_evaluated(source: PrometheusMetricSource) -> None:
    template = (
        "sum(increase(revision_request_count{namespace_name='{{namespace}}', "
        'revision_name="{{ revision }}", response_code_class="5xx"}[{{ interval }}]))'
    )
    values = TemplateValues(
        "shop", "web", kd.STABLE.revision, kd.STABLE.revision, kd.CANARY.revision, kd.WINDOW
    )
    assert await _custom(source, render_template(template, values.as_mapping())) == Scalar(20.0)


async def test_custom_query_shapes(source: PrometheusMetricSource, stats: list[QueryStats]) -> None:
    assert await _custom(source, "scalar(vector(2.5))") == Scalar(2.5)
    assert isinstance(await _custom(source, 'revision_request_count{namespace_name="nowhere"}'), NoData)
    assert isinstance(await _custom(source, "vector(0) / vector(0)"), NoData)  # NaN: no traffic, no data
    several = await _custom(source, "revision_request_count")
    assert isinstance(several, MeasurementError) and "aggregate" in several.message


async def test_bad_query_is_an_error_without_retry(
    source: PrometheusMetricSource, stats: list[QueryStats]
) -> None:
    got = await _custom(source, "sum(rate(revision_request_count[5m])")
    assert isinstance(got, MeasurementError)
    assert "bad_data" in got.message
    assert stats[-1].attempts == 1 and stats[-1].error == "http_4xx"


async def test_unreachable_prometheus_is_an_error_within_the_budget(stats: list[QueryStats]) -> None:
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    src = PrometheusMetricSource(
        PrometheusSource(address=address, timeout=1.0),
        "shop",
        secrets=DictSecrets({}),
        retry=RetryPolicy(total_seconds=1.0, max_attempts=10, initial_backoff=0.05, max_backoff=0.2),
        observer=stats.append,
    )
    try:
        batch = BuiltinQuery(BuiltinMetric.ERROR_RATE, DEFAULT_SPECS[Dialect.KOURIER], 60.0, kd.ALL_KEYS, AT)
        got = await src.query(batch)
    finally:
        src.close()
    assert all(
        isinstance(m, MeasurementError)
        and m.message == f"Prometheus at {address}: unreachable: Connection refused"
        for m in got.values()
    )
    assert stats[-1].error == "connection" and stats[-1].attempts >= 2  # retried ...
    assert stats[-1].seconds < 1.5  # ... within the budget


# ---------------------------------------------------------------------------------------------- injection


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize(
    "template",
    [
        'count(weird_total{name="{{ revision }}"})',
        "count(weird_total{name='{{ revision }}'})",
        'count(weird_total{name=~"{{ revision }}"})',
        "count(weird_total{name=~'{{revision}}'})",
        "count(weird_total{name=~`{{ revision }}`})",
        "count(weird_total{name=`{{ revision }}`})",
    ],
)
async def test_injected_values_match_only_themselves(
    value: str, template: str, source: PrometheusMetricSource
) -> None:
    values = TemplateValues("shop", "web", value, "s", "c", 300.0).as_mapping()
    try:
        promql = render_template(template, values)
    except TemplateError:
        # Only a backtick string may refuse a value, and only one it cannot hold.
        assert "`" in template and any(c in value for c in "`\r\ufffd")
        return
    # Exactly one series, the one whose label is the value: nothing added, nothing widened.
    assert await _custom(source, promql) == Scalar(1.0), promql


async def test_decoys_exist(source: PrometheusMetricSource) -> None:
    # The decoys are what an unescaped `a.b|c` would have matched: check they are really there.
    for decoy in DECOYS:
        promql = render_template('count(weird_total{name="{{ revision }}"})', {"revision": decoy})
        assert await _custom(source, promql) == Scalar(1.0)


@pytest.mark.parametrize("offset", [0, 7, 11])
async def test_a_window_between_samples_counts_exactly_where_increase_extrapolates(
    offset: int, source: PrometheusMetricSource
) -> None:
    """A bursty counter (knative_data.BURST) and windows whose edges fall on or between scrapes: the builtin
    count is the increments between the last samples at or before each edge, 120 whole requests however the
    window falls, while PromQL's increase() over the same range extrapolates the samples inside it (20 once
    the burst's first sample is outside): the reason the builtin queries do not use it for such series."""
    at = datetime.fromtimestamp(kd.AT + offset, tz=UTC)
    batch = BuiltinQuery(
        BuiltinMetric.ERROR_RATE, DEFAULT_SPECS[Dialect.KNATIVE_CLASSIC], kd.WINDOW, frozenset({kd.BURST}), at
    )
    assert (await source.query(batch))[kd.BURST] == kd.EXPECTED_BURST
    stable = BuiltinQuery(
        BuiltinMetric.ERROR_RATE,
        DEFAULT_SPECS[Dialect.KNATIVE_CLASSIC],
        kd.WINDOW,
        frozenset({kd.STABLE}),
        at,
    )
    assert (await source.query(stable))[kd.STABLE] == kd.EXPECTED_COUNTS[kd.STABLE]
    key = RevisionKey("burst", "x")
    promql = 'sum(increase(revision_request_count{namespace_name="burst"}[300s]))'
    naive = (await source.query(CustomQuery(promql, frozenset({key}), at)))[key]
    assert isinstance(naive, Scalar)
    assert round(naive.value) == (120 if offset == 0 else 20), naive


@pytest.mark.parametrize("dialect", list(Dialect))
async def test_a_series_unseen_at_the_window_start_counts_from_zero_only_if_born(
    dialect: Dialect, source: PrometheusMetricSource
) -> None:
    """knative_data.BORN: a pod's first server errors, whose series appeared inside the window while its
    target was scraped, count whole (3 before the first scrape + 15); knative_data.GAP: a series unseen at the
    window's start because its target's scrapes failed then is read with increase(), never its whole history
    (which counting it from zero would give: 400)."""
    keys = frozenset(kd.EXPECTED_UNSEEN_AT_START)
    batch = BuiltinQuery(BuiltinMetric.ERROR_RATE, DEFAULT_SPECS[dialect], kd.WINDOW, keys, AT)
    assert await source.query(batch) == kd.EXPECTED_UNSEEN_AT_START


async def test_a_long_query_goes_as_post_and_is_evaluated_at_the_same_time(
    source: PrometheusMetricSource,
) -> None:
    """A query past transport.LONG_QUERY_BYTES travels in a form body, its evaluation time with it."""
    others = "|".join(f"other-{i:05d}" for i in range(800))  # ~10 KiB of revision filter, matching nothing
    assert len(others) > LONG_QUERY_BYTES
    short = 'sum(revision_request_count{namespace_name="shop"})'
    long = f'sum(revision_request_count{{namespace_name="shop", revision_name!~"{others}"}})'
    got = await _custom(source, long)
    assert isinstance(got, Scalar) and got.value > 0
    assert got == await _custom(source, short)
