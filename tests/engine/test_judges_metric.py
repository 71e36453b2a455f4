"""A policy metric through the judges: rules from the API models, MetricResult numbers, step advice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollout.api.policy import Analysis, Comparison, Metric, NoDataPolicy, Threshold
from rollout.api.rollout import Verdict
from rollout.engine.judges.metric import (
    Judgement,
    MetricRules,
    advise,
    buckets_read,
    comparison_alpha,
    judge_metric,
    rules_for,
)
from rollout.engine.observations import (
    LatencyHistogram,
    Measurement,
    MeasurementError,
    MetricObservation,
    NoData,
    RequestCounts,
    Scalar,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def obs(name: str, canary: Measurement, stable: Measurement, k: int = 0) -> MetricObservation:
    return MetricObservation(
        metric=name,
        start=T0 + timedelta(seconds=30 * k),
        end=T0 + timedelta(seconds=30 * (k + 1)),
        canary=canary,
        stable=stable,
    )


def feed(rules: MetricRules, observations: list[MetricObservation], step: int = 0) -> list[Judgement]:
    state: dict[str, Any] | None = None
    out = []
    for o in observations:
        j = judge_metric(rules, state, o, step)
        state = json.loads(json.dumps(j.state))  # as stored in RolloutStatus.judgeState
        out.append(j)
    return out


def test_default_policy_splits_alpha_between_its_comparisons() -> None:
    analysis = Analysis()
    assert [comparison_alpha(analysis, m) for m in analysis.metrics] == [0.005, 0.005]
    own = Analysis(
        metrics=[
            Metric(name="e", builtin="errorRate", compare=Comparison(alpha=0.02)),
            Metric(name="l", builtin="latency", compare=Comparison()),
            Metric(name="d", builtin="latency", compare=Comparison(), dry_run=True),
        ]
    )
    assert [comparison_alpha(own, m) for m in own.metrics] == [0.02, 0.01, 0.01]
    rules = rules_for(analysis, analysis.metrics[1])
    assert rules.comparison is not None
    assert rules.comparison.psi0 == pytest.approx(1.0) and rules.comparison.psi_max == 1.5


def test_error_rate_with_threshold_and_comparison() -> None:
    analysis = Analysis()
    metric = Metric(name="errors", builtin="errorRate", threshold=Threshold(max=0.05), compare=Comparison())
    rules = rules_for(analysis, metric)
    assert rules.comparison is not None and rules.comparison.error_gate == 0.05
    good = [obs("errors", RequestCounts(400, 0), RequestCounts(3600, 9), k) for k in range(3)]
    js = feed(rules, good)
    last = js[-1].result
    assert last.verdict is Verdict.PASS and js[-1].ready  # under the 5% gate: the step may end
    assert last.value == 0.0 and last.stable_value == pytest.approx(9 / 3600)
    assert last.canary_requests == 400 and last.stable_requests == 3600
    assert last.p_value == 1.0 and last.log_evidence is not None and last.no_worse
    assert "errors: canary 0/1200, stable 27/10800" in last.message
    bad = [obs("errors", RequestCounts(400, 40), RequestCounts(3600, 4), k) for k in range(3)]
    js = feed(rules, bad)
    assert js[0].rollback and js[0].result.verdict is Verdict.FAIL
    assert js[0].result.p_value is not None and js[0].result.p_value < 0.005
    assert js[0].result.ratio_lower is not None and js[0].result.ratio_lower > 1


def test_threshold_only_metric_never_ends_a_step_early() -> None:
    rules = rules_for(Analysis(), Metric(name="p99", builtin="latency", threshold=Threshold(max=0.5)))
    h = LatencyHistogram(edges=(0.1, 0.5, 1.0), cumulative=(90, 99, 100), total=100)
    (j,) = feed(rules, [obs("p99", h, h)])
    assert j.result.verdict is Verdict.PASS and not j.ready and not j.can_end_step
    assert j.result.value == pytest.approx(0.5)  # p99 by interpolation inside the bucket
    few = LatencyHistogram(edges=(0.1, 0.5, 1.0), cumulative=(9, 10, 10), total=10)
    (j,) = feed(rules, [obs("p99", few, few)])
    assert j.result.verdict is Verdict.NO_DATA and j.hold  # 10 < minRequests 50, noData wait


def test_dry_run_is_reported_but_never_decides() -> None:
    rules = rules_for(Analysis(), Metric(name="e", builtin="errorRate", compare=Comparison(), dry_run=True))
    (j,) = feed(rules, [obs("e", RequestCounts(400, 200), RequestCounts(3600, 4))])
    assert j.result.verdict is Verdict.FAIL and j.result.dry_run
    assert not (j.rollback or j.hold or j.ready or j.errored or j.can_end_step)


def test_comparison_no_data_and_errors() -> None:
    rules = rules_for(Analysis(), Metric(name="e", builtin="errorRate", compare=Comparison()))
    (j,) = feed(rules, [obs("e", NoData(), RequestCounts(100, 0))])
    assert j.result.verdict is Verdict.NO_DATA and j.hold
    passing = rules_for(
        Analysis(), Metric(name="e", builtin="errorRate", compare=Comparison(), no_data=NoDataPolicy.PASS)
    )
    (j,) = feed(passing, [obs("e", NoData(), RequestCounts(100, 0))])
    assert not j.hold
    js = feed(rules, [obs("e", MeasurementError("timeout"), RequestCounts(100, 0))] * 4)
    assert js[-1].errored and js[-1].result.verdict is Verdict.ERROR and not js[-1].rollback
    assert js[-1].result.consecutive_errors == 4


def test_custom_query_compared_by_ratio() -> None:
    metric = Metric(
        name="q", query="sum(x{revision='{{ revision }}'})", compare=Comparison(max_relative_degradation=0.2)
    )
    rules = rules_for(Analysis(), metric)
    assert rules.comparison is None and rules.ratio is not None
    ok, bad = feed(rules, [obs("q", Scalar(1.1), Scalar(1.0)), obs("q", Scalar(1.5), Scalar(1.0))])
    assert ok.result.verdict is Verdict.PASS
    assert bad.result.verdict is Verdict.FAIL and not bad.rollback and bad.hold
    assert bad.result.total_failures == 1


def test_advise_adds_up_the_metrics() -> None:
    analysis = Analysis()
    err = rules_for(
        analysis, Metric(name="e", builtin="errorRate", threshold=Threshold(max=0.05), compare=Comparison())
    )
    thr = rules_for(analysis, Metric(name="t", query="x", threshold=Threshold(max=1.0)))
    (je,) = feed(err, [obs("e", RequestCounts(2000, 0), RequestCounts(18000, 10))])
    (jt,) = feed(thr, [obs("t", Scalar(0.5), Scalar(0.5))])
    assert advise([je, jt]).end_early
    (jt_bad,) = feed(thr, [obs("t", Scalar(2.0), Scalar(0.5))])
    advice = advise([je, jt_bad])
    assert not advice.end_early and advice.holding == ("t",) and advice.rollback == ()
    assert not advise([jt]).end_early  # thresholds alone never end a step early


def test_threshold_short_of_min_requests_does_not_hold_a_comparison() -> None:
    # Low traffic: 3 canary requests per interval, fewer than minRequests 50. The comparison judges small
    # samples, so the metric has data and the step is not held; the threshold guards larger samples.
    metric = Metric(name="e", builtin="errorRate", threshold=Threshold(max=0.05), compare=Comparison())
    rules = rules_for(Analysis(), metric)
    (j,) = feed(rules, [obs("e", RequestCounts(3, 0), RequestCounts(27, 0))])
    assert not j.hold and j.result.verdict is not Verdict.NO_DATA
    assert j.result.last_data_at == j.result.measured_at
    # Without the comparison, the same threshold waits for data.
    only = rules_for(Analysis(), Metric(name="e", builtin="errorRate", threshold=Threshold(max=0.05)))
    (j,) = feed(only, [obs("e", RequestCounts(3, 0), RequestCounts(27, 0))])
    assert j.hold and j.result.verdict is Verdict.NO_DATA and j.result.last_data_at is None
    # With enough requests the threshold still fails a bad canary.
    (j,) = feed(rules, [obs("e", RequestCounts(100, 10), RequestCounts(900, 1))])
    assert j.result.verdict is Verdict.FAIL and j.result.total_failures == 1


def test_evaluate_judges_the_whole_policy_for_the_machine() -> None:
    from rollout.api.policy import RolloutPolicySpec
    from rollout.engine.judges.evaluate import evaluate

    policy = RolloutPolicySpec.model_validate({"strategy": {"canary": {"stepWeight": 10, "maxWeight": 50}}})
    start, end = T0, T0 + timedelta(seconds=30)
    bad = {"error-rate": obs("error-rate", RequestCounts(400, 60), RequestCounts(3600, 3))}
    update, judgements = evaluate(policy, {}, bad, 0, (start, end), evaluated_at=end + timedelta(seconds=15))
    assert update.failed == ("error-rate",)
    assert update.window_end == end + timedelta(seconds=15)  # the tick time paces the machine
    assert "error-rate" in update.summary and set(update.judge_state) == {"error-rate", "latency"}
    latency = next(r for r in update.results if r.name == "latency")
    assert latency.verdict is Verdict.INCONCLUSIVE and "not measured" in latency.message
    assert judgements[1].result.consecutive_errors == 1 and not judgements[1].rollback
    # The next tick continues from the returned state.
    update2, _ = evaluate(policy, update.judge_state, bad, 0, (end, end + timedelta(seconds=30)))
    assert update2.judge_state["error-rate"]["compare"]["intervals"] == 2


EDGES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _histogram(per_bucket: list[int]) -> LatencyHistogram:
    running, cumulative = 0, []
    for n in per_bucket[:-1]:
        running += n
        cumulative.append(running)
    return LatencyHistogram(EDGES, tuple(cumulative), running + per_bucket[-1])


def _only(h: LatencyHistogram, edges: tuple[float, ...] | None) -> LatencyHistogram:
    """The histogram a query selecting only `edges` (and +Inf) answers."""
    if edges is None:
        return h
    kept = [(e, c) for e, c in zip(h.edges, h.cumulative, strict=True) if e in edges]
    return LatencyHistogram(tuple(e for e, _ in kept), tuple(c for _, c in kept), h.total)


def test_latency_judges_read_only_their_thresholds_buckets_to_the_same_verdicts() -> None:
    metric = Metric(name="latency", builtin="latency", compare=Comparison())
    rules = rules_for(Analysis(metrics=[metric]), metric)
    stable = _histogram([5, 20, 30, 25, 10, 5, 3, 1, 1])
    slower = _histogram([1, 5, 20, 30, 20, 12, 7, 3, 2])
    full: dict[str, Any] | None = None
    read: dict[str, Any] | None = None
    for k in range(12):
        assert buckets_read(metric, full) == buckets_read(metric, read)
        edges = buckets_read(metric, read)
        if k == 0:
            assert edges is None  # the thresholds come from stable's first window: every bucket
        else:
            assert edges is not None and set(edges) < set(EDGES)
        a = judge_metric(rules, full, obs("latency", slower, stable, k), 0)
        b = judge_metric(rules, read, obs("latency", _only(slower, edges), _only(stable, edges), k), 0)
        full, read = json.loads(json.dumps(a.state)), json.loads(json.dumps(b.state))
        assert full["compare"] == read["compare"] and a.rollback == b.rollback
        assert (a.result.verdict, a.result.p_value) == (b.result.verdict, b.result.p_value)
    assert a.rollback  # the comparison decided, on the thresholds' buckets alone


def test_a_quantile_judged_too_needs_every_bucket() -> None:
    state = {"compare": {"streams": [{"edge": 0.1}, {"edge": 0.5}]}}
    compared = Metric(name="latency", builtin="latency", compare=Comparison())
    assert buckets_read(compared, state) == (0.1, 0.5)
    guarded = Metric(name="latency", builtin="latency", compare=Comparison(), threshold=Threshold(max=0.5))
    assert buckets_read(guarded, state) is None  # its p99 is read from every bucket
    errors = Metric(name="errors", builtin="errorRate", compare=Comparison())
    assert buckets_read(errors, state) is None
