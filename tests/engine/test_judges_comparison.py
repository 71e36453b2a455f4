"""Sequential comparison judge: validity on A/A traffic, power on regressions, promotion side, restarts."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator

import numpy as np
import pytest

from rollout.engine.judges import comparison as cmp
from rollout.engine.judges.sequential import wilson_interval
from rollout.engine.observations import LatencyHistogram, RequestCounts

EDGES = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1.0, 2.0, 5.0)
LADDER = (0.05, 0.1, 0.2, 0.3, 0.5)


def lognormal_buckets(median: float, sigma: float) -> np.ndarray:
    """Probabilities of the buckets (..., +Inf) for a lognormal latency."""
    from math import erf, log, sqrt

    cdf = [0.5 * (1 + erf(log(e / median) / (sigma * sqrt(2)))) for e in EDGES]
    return np.diff([0.0, *cdf, 1.0])


def histogram(counts: np.ndarray) -> LatencyHistogram:
    cumulative = np.cumsum(counts)
    return LatencyHistogram(
        edges=EDGES, cumulative=tuple(int(x) for x in cumulative[:-1]), total=int(cumulative[-1])
    )


def intervals(
    rng: np.random.Generator,
    *,
    rps: float,
    seconds: int = 30,
    count: int = 20,
    error: float = 0.01,
    canary_error: float | None = None,
    canary_scale: float = 1.0,
) -> Iterator[tuple[int, RequestCounts, RequestCounts, LatencyHistogram, LatencyHistogram]]:
    """Ramped weights, diurnal load and a baseline error rate moving +-50% for both arms."""
    phase = rng.uniform(0, 2 * math.pi)
    base = lognormal_buckets(0.05, 0.8)
    slow = lognormal_buckets(0.05 * canary_scale, 0.8)
    for k in range(count):
        step = min(k * len(LADDER) // count, len(LADDER) - 1)
        w = LADDER[step]
        t = k * seconds
        load = rps * seconds * (1 + 0.3 * math.sin(2 * math.pi * t / 3600 + phase))
        p = error * (1 + 0.5 * math.sin(2 * math.pi * t / 1800 + phase))
        p_c = (
            p if canary_error is None else canary_error * (1 + 0.5 * math.sin(2 * math.pi * t / 1800 + phase))
        )
        n = int(rng.poisson(load))
        n_c = int(rng.binomial(n, w))
        n_s = n - n_c
        yield (
            step,
            RequestCounts(n_c, int(rng.binomial(n_c, min(p_c, 1.0)))),
            RequestCounts(n_s, int(rng.binomial(n_s, p))),
            histogram(rng.multinomial(n_c, slow)),
            histogram(rng.multinomial(n_s, base)),
        )


def run(
    rule: cmp.ComparisonRule, rng: np.random.Generator, baseline: LatencyHistogram | None = None, **kw: float
) -> cmp.ComparisonOutcome:
    """One rollout through the judge until it rolls back or the intervals run out."""
    state = cmp.start(rule, baseline)
    outcome = None
    latency = rule.kind is cmp.Kind.LATENCY
    for step, c, s, hc, hs in intervals(rng, **kw):  # type: ignore[arg-type]
        state, outcome = cmp.update(rule, state, hc if latency else c, hs if latency else s, step)
        if outcome.rollback:
            break
    assert outcome is not None
    return outcome


def run_errors(rule: cmp.ComparisonRule, rng: np.random.Generator, **kw: float) -> cmp.ComparisonOutcome:
    return run(rule, rng, None, **kw)


def run_latency(
    rule: cmp.ComparisonRule, rng: np.random.Generator, baseline: LatencyHistogram | None, **kw: float
) -> cmp.ComparisonOutcome:
    return run(rule, rng, baseline, **kw)


def baseline_histogram(rng: np.random.Generator, n: int = 100_000) -> LatencyHistogram:
    return histogram(rng.multinomial(n, lognormal_buckets(0.05, 0.8)))


ERRORS = cmp.ComparisonRule(metric="error-rate", kind=cmp.Kind.ERRORS, alpha=0.05)
LATENCY = cmp.ComparisonRule(metric="latency", kind=cmp.Kind.LATENCY, alpha=0.05)


def test_false_rollbacks_on_aa_stay_below_alpha_errors() -> None:
    rng = np.random.default_rng(11)
    runs = 1500
    rollbacks = sum(run_errors(ERRORS, rng, rps=50.0, error=0.02).rollback for _ in range(runs))
    low, _ = wilson_interval(rollbacks, runs)
    assert low < ERRORS.alpha  # not significantly above alpha
    assert rollbacks / runs < ERRORS.alpha


def test_false_rollbacks_on_aa_stay_below_alpha_latency() -> None:
    rng = np.random.default_rng(12)
    base = baseline_histogram(rng)
    runs = 600
    rollbacks = sum(run_latency(LATENCY, rng, base, rps=20.0).rollback for _ in range(runs))
    low, _ = wilson_interval(rollbacks, runs)
    assert low < LATENCY.alpha
    assert rollbacks / runs < LATENCY.alpha


def test_power_on_error_regressions() -> None:
    rng = np.random.default_rng(13)
    runs = 200
    tripled = sum(run_errors(ERRORS, rng, rps=200.0, canary_error=0.03).rollback for _ in range(runs))
    plus_five = sum(
        run_errors(ERRORS, rng, rps=200.0, error=0.001, canary_error=0.051, count=2).rollback
        for _ in range(runs)
    )
    assert tripled / runs >= 0.95
    assert plus_five / runs >= 0.95  # caught within the first two intervals at 5% weight


def test_power_on_latency_regression() -> None:
    rng = np.random.default_rng(14)
    base = baseline_histogram(rng)
    runs = 200
    caught = sum(run_latency(LATENCY, rng, base, rps=20.0, canary_scale=1.3).rollback for _ in range(runs))
    assert caught / runs >= 0.9


def test_canary_better_is_never_a_regression_and_shows_no_worse() -> None:
    rng = np.random.default_rng(15)
    rule = cmp.ComparisonRule(metric="e", kind=cmp.Kind.ERRORS, alpha=0.01, psi_max=1.5)
    outs = [run_errors(rule, rng, rps=200.0, error=0.05, canary_error=0.01) for _ in range(50)]
    assert not any(o.rollback for o in outs)
    assert all(o.no_worse for o in outs)
    assert all(o.streams[0].ratio_upper is not None and o.streams[0].ratio_upper <= 1.0 for o in outs)


def test_regression_bounds_exclude_one() -> None:
    rng = np.random.default_rng(16)
    out = run_errors(ERRORS, rng, rps=200.0, error=0.01, canary_error=0.05)
    assert out.rollback
    s = out.streams[0]
    assert s.ratio_lower is not None and s.ratio_lower > 1.0
    assert out.p_value <= ERRORS.alpha


def test_zero_failure_intervals_change_nothing() -> None:
    state = cmp.start(ERRORS)
    before = state.streams[0].total[:]
    state, out = cmp.update(ERRORS, state, RequestCounts(100, 0), RequestCounts(900, 0), 0)
    assert state.streams[0].total == before
    assert out.log_m == pytest.approx(0.0) and out.p_value == 1.0 and not out.rollback
    # An arm with no requests at all: nothing is learned and nothing breaks.
    state, out = cmp.update(ERRORS, state, RequestCounts(0, 0), RequestCounts(900, 9), 0)
    assert state.streams[0].total == before and out.waiting


def test_state_round_trips_and_a_restart_continues_exactly() -> None:
    rule = cmp.ComparisonRule(metric="l", kind=cmp.Kind.LATENCY, alpha=0.01, psi_max=1.5)
    rng = np.random.default_rng(17)
    data = list(intervals(rng, rps=30.0, canary_scale=1.2, count=12))
    straight = cmp.start(rule)
    restarted = cmp.start(rule)
    for step, _, _, hc, hs in data:
        straight, a = cmp.update(rule, straight, hc, hs, step)
        restarted = cmp.ComparisonState.from_dict(json.loads(json.dumps(restarted.to_dict())))
        restarted, b = cmp.update(rule, restarted, hc, hs, step)
        assert a == b
    assert straight.to_dict() == restarted.to_dict()


def test_latency_without_baseline_picks_edges_from_first_interval() -> None:
    rng = np.random.default_rng(18)
    state = cmp.start(LATENCY)
    assert state.streams == []
    data = list(intervals(rng, rps=50.0, count=2))
    state, out = cmp.update(LATENCY, state, data[0][3], data[0][4], 0)
    edges = [s.edge for s in state.streams]
    assert out.waiting and edges[:2] == [0.06, 0.15] and edges[2] in (0.35, 0.4)
    assert all(s.canary == [0, 0] for s in state.streams)
    state, out = cmp.update(LATENCY, state, data[1][3], data[1][4], 0)
    assert not out.waiting and state.streams[0].canary[0] > 0


def test_edge_choice_from_baseline_and_snapping() -> None:
    rng = np.random.default_rng(19)
    base = baseline_histogram(rng)
    # Lognormal median 50 ms, sigma 0.8: p50 = 50 ms, p90 = 139 ms, p99 = 321 ms.
    assert cmp.choose_edges(base, (0.5, 0.9, 0.99)) == (0.06, 0.15, 0.35)
    assert cmp.snap_edges((0.5, 0.12, 0.12), base) == (0.15, 0.5)
    rule = cmp.ComparisonRule(metric="l", kind=cmp.Kind.LATENCY, alpha=0.01, latency_edges=(0.3,))
    state = cmp.start(rule, base)
    assert [s.edge for s in state.streams] == [0.3]
    assert state.streams[0].baseline_share == pytest.approx(0.012, abs=0.003)


def test_promotion_side_restarts_at_each_step_and_uses_the_gate() -> None:
    rule = cmp.ComparisonRule(metric="e", kind=cmp.Kind.ERRORS, alpha=0.01, psi_max=1.5, error_gate=0.01)
    state = cmp.start(rule)
    # Rare errors: the relative test cannot show "no worse", the absolute gate (canary under 1%) can.
    state, out = cmp.update(rule, state, RequestCounts(200, 0), RequestCounts(1800, 2), 0)
    assert not out.no_worse
    state, out = cmp.update(rule, state, RequestCounts(400, 0), RequestCounts(3600, 3), 0)
    assert out.no_worse and out.streams[0].gate_log_e is not None
    assert out.streams[0].gate_log_e >= math.log(1 / rule.beta)
    # A new step starts the promotion side again; the regression side keeps its evidence.
    total_before = state.streams[0].total[:]
    state, out = cmp.update(rule, state, RequestCounts(10, 0), RequestCounts(90, 0), 1)
    assert not out.no_worse and state.streams[0].step_canary == [10, 0]
    assert state.streams[0].total == total_before
    # Without psi_max the step never ends early.
    never = cmp.ComparisonRule(metric="e", kind=cmp.Kind.ERRORS, alpha=0.01, psi_max=None, error_gate=0.01)
    st = cmp.start(never)
    st, out = cmp.update(never, st, RequestCounts(10_000, 0), RequestCounts(10_000, 50), 0)
    assert not out.no_worse


def test_rollback_is_sticky_and_p_value_never_increases() -> None:
    rng = np.random.default_rng(20)
    state = cmp.start(ERRORS)
    p_values = []
    rolled = False
    for step, c, s, _, _ in intervals(rng, rps=200.0, canary_error=0.05, count=10):
        state, out = cmp.update(ERRORS, state, c, s, step)
        p_values.append(out.p_value)
        rolled = rolled or out.rollback
        if rolled:
            assert out.rollback
    assert rolled
    assert all(b <= a for a, b in itertools.pairwise(p_values))
