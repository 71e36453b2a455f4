"""Builtin queries and the arithmetic that turns their rows into measurements (no server)."""

from __future__ import annotations

import math

import pytest

from rollout.analysis import dialects
from rollout.analysis.builtins import family_queries, latency_histograms, request_counts
from rollout.analysis.dialects import KNATIVE_CLASSIC, KNATIVE_OTEL, KOURIER, RevisionLabels
from rollout.analysis.keys import RevisionKey
from rollout.analysis.results import ResultShapeError, Sample, parse_single_number, parse_vector
from rollout.analysis.source import BuiltinQuery
from rollout.api.policy import BuiltinMetric
from rollout.engine.observations import LatencyHistogram, MeasurementError, NoData, RequestCounts

A = RevisionKey("shop", "web-00001")
B = RevisionKey("shop", "web-00002")


def _row(value: float, **labels: str) -> Sample:
    return Sample(labels, value)


def _classic(ns: str, rev: str, cls: str, value: float) -> Sample:
    return _row(value, namespace_name=ns, revision_name=rev, response_code_class=cls)


def test_error_rate_queries_per_dialect() -> None:
    keys = frozenset({A, B})
    classic = family_queries(BuiltinQuery(BuiltinMetric.ERROR_RATE, KNATIVE_CLASSIC, 120.0, keys))
    sel = '{namespace_name=~"shop",revision_name=~"web-00001|web-00002"}'

    def exact(metric: str, window: str, selector: str, born: bool = True) -> str:
        s = metric + selector
        start = f"{s} offset {window}"
        if born:
            start = f"({start} or {s} * 0 and on(instance, job) (up offset {window} == 1))"
        return f"(({s} - {start}) >= 0 or increase({s}[{window}]))"

    assert [q.promql for q in classic] == [
        "sum by (namespace_name, revision_name, response_code_class) "
        f"({exact('revision_request_count', '120s', sel)})",
        "sum by (namespace_name, revision_name, response_code_class) "
        f"({exact('activator_request_count', '120s', sel)})",
    ]
    kourier = family_queries(BuiltinQuery(BuiltinMetric.LATENCY, KOURIER, 60.0, keys))
    envoy = '{envoy_cluster_name=~"shop/web-00001|shop/web-00002"}'
    assert [q.promql for q in kourier] == [
        f"sum by (envoy_cluster_name, le) ({exact('envoy_cluster_upstream_rq_time_bucket', '60s', envoy, False)})"
    ]


def test_revision_filter_is_dropped_for_large_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialects, "MAX_ALTERNATIVES", 2)
    many = [RevisionKey("shop", f"web-{i:05d}") for i in range(3)]
    assert KNATIVE_CLASSIC.requests.labels.matchers(many) == ['namespace_name=~"shop"']
    assert KOURIER.requests.labels.matchers(many) == ['envoy_cluster_name=~"(?:shop)/.+"']
    spread = [RevisionKey(f"ns{i}", "web") for i in range(3)]
    assert KNATIVE_CLASSIC.requests.labels.matchers(spread) == ['revision_name=~"web"']
    assert KOURIER.requests.labels.matchers(spread) == []
    crowd = [RevisionKey(f"ns{i}", f"r{i}") for i in range(3)]
    assert KNATIVE_OTEL.requests.labels.matchers(crowd) == []


def test_combined_label_keys() -> None:
    labels = RevisionLabels("", "envoy_cluster_name", separator="/")
    assert labels.key_of({"envoy_cluster_name": "shop/web-00001"}) == ("shop", "web-00001")
    assert labels.key_of({"envoy_cluster_name": "kourier-system/stats"}) == ("kourier-system", "stats")
    assert labels.key_of({"envoy_cluster_name": "no-slash"}) is None
    assert labels.key_of({}) is None


def test_label_names_are_validated() -> None:
    with pytest.raises(ValueError, match="label name"):
        KNATIVE_OTEL.with_revision_labels("namespace", 'rev"} or vector(1)')
    custom = KNATIVE_OTEL.with_revision_labels("namespace", "revision")
    assert custom.requests.labels.group_by == ("namespace", "revision")
    assert custom.activator == KNATIVE_OTEL.activator  # the activator's own labels do not change


def test_counts_sum_codes_and_round_once() -> None:
    rows = [
        _classic("shop", "web-00001", "2xx", 99.4),
        _classic("shop", "web-00001", "5xx", 0.4),
        _classic("shop", "web-00001", "4xx", 0.4),
        _classic("blog", "web-00001", "2xx", 1000.0),  # another namespace: not A
        _classic("shop", "web-00009", "2xx", 5.0),  # not asked for
    ]
    got = request_counts(KNATIVE_CLASSIC, frozenset({A, B}), rows, [])
    assert got[A] == RequestCounts(100, 0)  # 100.2 requests, 0.4 failures
    assert isinstance(got[B], NoData)


@pytest.mark.parametrize(
    ("direct_5xx", "activator_5xx", "requests", "failures"),
    [
        (10.0, 10.0, 100, 10),  # activator in the path for everything: its 5xx are queue-proxy's
        (10.0, 0.0, 100, 10),  # activator not in the path
        (0.0, 7.0, 107, 7),  # cold-start errors queue-proxy never saw
        (3.0, 7.0, 104, 7),  # some of each: never more than both, never double
    ],
)
def test_activator_errors_are_added_once(
    direct_5xx: float, activator_5xx: float, requests: int, failures: int
) -> None:
    direct = [
        _classic("shop", "web-00001", "2xx", 100.0 - direct_5xx),
        _classic("shop", "web-00001", "5xx", direct_5xx),
    ]
    activator = [
        _classic("shop", "web-00001", "5xx", activator_5xx),
        _classic("shop", "web-00001", "2xx", 50.0),
    ]
    got = request_counts(KNATIVE_CLASSIC, frozenset({A}), direct, activator)
    assert got[A] == RequestCounts(requests, failures)


def test_activator_only_revision_has_counts() -> None:
    got = request_counts(KNATIVE_CLASSIC, frozenset({A}), [], [_classic("shop", "web-00001", "5xx", 4.0)])
    assert got[A] == RequestCounts(4, 4)


def test_kourier_codes() -> None:
    rows = [
        _row(90.0, envoy_cluster_name="shop/web-00001", envoy_response_code="200"),
        _row(6.0, envoy_cluster_name="shop/web-00001", envoy_response_code="503"),
        _row(4.0, envoy_cluster_name="shop/web-00001", envoy_response_code="404"),
    ]
    assert request_counts(KOURIER, frozenset({A}), rows, None)[A] == RequestCounts(100, 6)


def _bucket(le: str, value: float, rev: str = "web-00001") -> Sample:
    return _row(value, namespace_name="shop", revision_name=rev, le=le)


def test_histogram_in_seconds_cumulative_and_monotone() -> None:
    rows = [
        _bucket("5", 10.6),
        _bucket("10", 10.4),  # rounded apart (11 then 10): buckets are cumulative, so 11
        _bucket("100", 30.0),
        _bucket("+Inf", 29.6),  # total 30
        _bucket("+Inf", 5.0, rev="web-00002"),
    ]
    got = latency_histograms(KNATIVE_CLASSIC, frozenset({A, B}), rows)
    assert got[A] == LatencyHistogram((0.005, 0.01, 0.1), (11, 11, 30), 30)
    assert got[B] == LatencyHistogram((), (), 5)


def test_histogram_without_inf_bucket_is_an_error() -> None:
    got = latency_histograms(KNATIVE_CLASSIC, frozenset({A}), [_bucket("5", 1.0)])
    assert isinstance(got[A], MeasurementError)


def test_parse_vector_and_single_number() -> None:
    result = [{"metric": {"a": "1"}, "value": [1, "2.5"]}, {"metric": {}, "value": [1, "NaN"]}]
    rows = parse_vector(result)
    assert rows[0] == Sample({"a": "1"}, 2.5) and math.isnan(rows[1].value)
    assert parse_single_number([1700000000, "3"]) == 3.0
    assert parse_single_number([]) is None
    assert parse_single_number([{"metric": {}, "value": [1, "NaN"]}]) is None
    assert parse_single_number([{"metric": {}, "value": [1, "+Inf"]}]) == math.inf


@pytest.mark.parametrize(
    "result",
    [
        [1700000000, "text"],
        [{"metric": {}, "values": [[1, "1"]]}],
        [{"metric": {}, "value": [1, "1"]}, {"metric": {"a": "b"}, "value": [1, "2"]}],
        "nonsense",
        [{"metric": {}, "value": [1, None]}],
    ],
)
def test_shapes_that_are_not_one_number(result: object) -> None:
    with pytest.raises(ResultShapeError):
        parse_single_number(result)


def test_vector_needed_for_builtins() -> None:
    with pytest.raises(ResultShapeError):
        parse_vector([1700000000, "1"])


def test_latency_query_selects_only_the_judged_buckets() -> None:
    keys = frozenset({A})
    classic = family_queries(
        BuiltinQuery(BuiltinMetric.LATENCY, KNATIVE_CLASSIC, 60.0, keys, buckets=frozenset({0.35, 0.06}))
    )
    # milliseconds as exporters write them ("350") or Prometheus 3 normalises them ("350.0")
    assert 'le=~"60(?:\\\\.0+)?|350(?:\\\\.0+)?|\\\\+Inf"' in classic[0].promql
    otel = family_queries(
        BuiltinQuery(BuiltinMetric.LATENCY, KNATIVE_OTEL, 60.0, keys, buckets=frozenset({0.25, 1.0}))
    )
    assert 'le=~"0\\\\.250*|1(?:\\\\.0+)?|\\\\+Inf"' in otel[0].promql
    every = family_queries(BuiltinQuery(BuiltinMetric.LATENCY, KNATIVE_CLASSIC, 60.0, keys))
    assert "le=~" not in every[0].promql


def test_a_bucket_written_with_an_exponent_is_not_filtered() -> None:
    # 1e-07 s is 0.0001 ms: a pattern for every way of writing it is not worth it, so no le filter
    query = BuiltinQuery(BuiltinMetric.LATENCY, KNATIVE_OTEL, 60.0, frozenset({A}), buckets=frozenset({1e-7}))
    assert "le=~" not in family_queries(query)[0].promql


def test_an_answer_without_a_judged_bucket_is_an_error_not_a_neighbour() -> None:
    rows = [_bucket("100", 8.0), _bucket("+Inf", 10.0)]
    got = latency_histograms(KNATIVE_CLASSIC, frozenset({A}), rows, frozenset({0.05, 0.1}))
    # reading 0.05 s from the next bucket below (none: all 10 "slow") would invent slow requests
    error = got[A]
    assert isinstance(error, MeasurementError) and "0.05s" in error.message
    fine = latency_histograms(KNATIVE_CLASSIC, frozenset({A}), rows, frozenset({0.1}))
    assert fine[A] == LatencyHistogram((0.1,), (8,), 10)
