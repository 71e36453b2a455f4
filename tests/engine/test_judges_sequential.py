"""Exact properties of the test martingales (rollout.engine.judges.sequential)."""

from __future__ import annotations

import itertools
import math

import pytest

from rollout.engine.judges.sequential import (
    beta_binomial_log_bf,
    conditional_log_lr,
    log_mean_exp,
    logsumexp,
    null_share,
    odds_alternative,
    theta,
    two_binomial_log_e,
    wilson_interval,
)

GRID = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


def binom_pmf(k: int, n: int, p: float) -> float:
    return math.comb(n, k) * p**k * (1.0 - p) ** (n - k)


def hypergeom_pmf(k: int, total: int, successes: int, draws: int) -> float:
    return math.comb(successes, k) * math.comb(total - successes, draws - k) / math.comb(total, draws)


@pytest.mark.parametrize("bad", [1, 2, 7, 30, 120])
@pytest.mark.parametrize("w", [0.01, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("psi", GRID)
def test_expected_likelihood_ratio_is_one_under_the_null(bad: int, w: float, psi: float) -> None:
    # Sum over the exact binomial law of f_C given F under psi = 1.
    expectation = sum(
        binom_pmf(f, bad, w) * math.exp(conditional_log_lr(f, bad - f, w, psi)) for f in range(bad + 1)
    )
    assert expectation == pytest.approx(1.0, rel=1e-10)


@pytest.mark.parametrize("psi0", [1.1, 1.5])
def test_expected_likelihood_ratio_against_a_shifted_null(psi0: float) -> None:
    bad, w = 25, 0.2
    for psi in (psi0 * m for m in GRID):
        at_null = sum(
            binom_pmf(f, bad, theta(psi0, w)) * math.exp(conditional_log_lr(f, bad - f, w, psi, psi0))
            for f in range(bad + 1)
        )
        assert at_null == pytest.approx(1.0, rel=1e-10)
        # Inside the composite null (canary better than psi0 x stable) the expectation is below one.
        inside = sum(
            binom_pmf(f, bad, theta(psi0 / 2, w)) * math.exp(conditional_log_lr(f, bad - f, w, psi, psi0))
            for f in range(bad + 1)
        )
        assert inside < 1.0


def test_mixture_has_expectation_one_too() -> None:
    bad, w = 12, 0.3
    expectation = sum(
        binom_pmf(f, bad, w)
        * math.exp(log_mean_exp([conditional_log_lr(f, bad - f, w, psi) for psi in GRID]))
        for f in range(bad + 1)
    )
    assert expectation == pytest.approx(1.0, rel=1e-10)


@pytest.mark.parametrize(("total", "bad", "n_canary"), [(40, 7, 4), (60, 20, 30), (25, 24, 5), (200, 3, 100)])
def test_hypergeometric_law_keeps_expectation_at_most_one(total: int, bad: int, n_canary: int) -> None:
    # Given both arm sizes, f_C is hypergeometric; the bound must hold under that law as well.
    w = n_canary / total
    for psi in GRID:
        expectation = sum(
            hypergeom_pmf(f, total, bad, n_canary) * math.exp(conditional_log_lr(f, bad - f, w, psi))
            for f in range(max(0, n_canary + bad - total), min(bad, n_canary) + 1)
        )
        assert expectation <= 1.0 + 1e-12


def test_intervals_without_bad_requests_change_nothing() -> None:
    for w in (0.0, 0.2, 1.0):
        for psi in GRID:
            assert conditional_log_lr(0, 0, w, psi) == 0.0
    # One arm empty: the split is 0 or 1 and the ratio says nothing.
    assert conditional_log_lr(0, 5, 0.0, 2.0) == 0.0
    assert conditional_log_lr(5, 0, 1.0, 2.0) == 0.0


def test_monotone_in_the_counts() -> None:
    w = 0.2
    for psi in GRID:
        values = [conditional_log_lr(f, 10, w, psi) for f in range(20)]
        assert all(b > a for a, b in itertools.pairwise(values))
        by_stable = [conditional_log_lr(5, s, w, psi) for s in range(20)]
        assert all(b < a for a, b in itertools.pairwise(by_stable))
    # And in psi below the maximum-likelihood ratio: more canary failures favour larger psi.
    assert conditional_log_lr(10, 10, 0.1, 3.0) > conditional_log_lr(10, 10, 0.1, 1.5) > 0


def test_at_constant_split_the_statistic_depends_only_on_totals() -> None:
    # What is comparable with the closed form: at a constant w every grid component is a function of the
    # cumulative counts alone, however the failures fall into intervals.
    w = 0.25
    intervals = [(3, 1), (0, 4), (2, 2), (0, 0), (5, 9)]
    n_c = sum(c for c, _ in intervals)
    n_s = sum(s for _, s in intervals)
    for psi in GRID:
        summed = sum(conditional_log_lr(c, s, w, psi) for c, s in intervals)
        assert summed == pytest.approx(conditional_log_lr(n_c, n_s, w, psi), rel=1e-12)


@pytest.mark.parametrize(("n_c", "n_s", "w"), [(0, 0, 0.1), (3, 10, 0.1), (12, 40, 0.2), (30, 30, 0.5)])
def test_closed_form_equals_grid_mixture_under_the_beta_prior(n_c: int, n_s: int, w: float) -> None:
    # Lindon-Malek's closed form is the Beta(k w, k (1 - w)) mixture over theta of the same per-psi ratio;
    # the grid form with Beta weights on a fine theta grid (psi = theta (1 - w) / (w (1 - theta))) must give
    # the same number. A discrete grid with equal weights is a different prior and is not expected to.
    k = 100.0
    a, b = k * w, k * (1.0 - w)
    points = 40000
    log_terms = []
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    for i in range(points):
        t = (i + 0.5) / points
        psi = t * (1.0 - w) / (w * (1.0 - t))
        log_prior = (a - 1.0) * math.log(t) + (b - 1.0) * math.log(1.0 - t) - log_norm - math.log(points)
        log_terms.append(log_prior + conditional_log_lr(n_c, n_s, w, psi))
    assert logsumexp(log_terms) == pytest.approx(beta_binomial_log_bf(n_c, n_s, w, k), abs=1e-6)


def test_closed_form_is_two_sided() -> None:
    # The closed form grows for a canary that is much better as well as much worse; the grid (psi > 1) does
    # not reward a better canary.
    w = 0.5
    assert beta_binomial_log_bf(0, 40, w) > 0
    assert beta_binomial_log_bf(40, 0, w) > 0
    assert log_mean_exp([conditional_log_lr(0, 40, w, psi) for psi in GRID]) < 0


@pytest.mark.parametrize("psi0", [1.0, 1.1, 1.5])
@pytest.mark.parametrize(("n_c", "n_s"), [(3, 9), (10, 10), (25, 5)])
def test_two_binomial_e_value_has_expectation_at_most_one_on_the_null(
    psi0: float, n_c: int, n_s: int
) -> None:
    q_hat = 0.3
    for m in (1.1, 1.5, 3.0):
        alt_c = odds_alternative(q_hat, psi0 * m)
        if alt_c <= psi0 * q_hat:
            continue  # an alternative inside the null has no power; the judge skips it
        worst = 0.0
        for q in (0.01, 0.1, 0.2, 0.3, 0.45, 0.6):
            if psi0 * q >= 1.0:
                continue
            expectation = sum(
                binom_pmf(fc, n_c, psi0 * q)
                * binom_pmf(fs, n_s, q)
                * math.exp(
                    two_binomial_log_e(fc, n_c, fs, n_s, alt_canary=alt_c, alt_stable=q_hat, psi0=psi0)
                )
                for fc in range(n_c + 1)
                for fs in range(n_s + 1)
            )
            assert expectation <= 1.0 + 1e-9
            worst = max(worst, expectation)
            # Canary better than psi0 x stable: still at most one.
            better = sum(
                binom_pmf(fc, n_c, 0.5 * psi0 * q)
                * binom_pmf(fs, n_s, q)
                * math.exp(
                    two_binomial_log_e(fc, n_c, fs, n_s, alt_canary=alt_c, alt_stable=q_hat, psi0=psi0)
                )
                for fc in range(n_c + 1)
                for fs in range(n_s + 1)
            )
            assert better <= 1.0 + 1e-9
        # At the null member closest to the alternative the expectation is exactly one.
        q_star = null_share(n_c, n_s, alt_c, q_hat, psi0)
        at_star = sum(
            binom_pmf(fc, n_c, psi0 * q_star)
            * binom_pmf(fs, n_s, q_star)
            * math.exp(two_binomial_log_e(fc, n_c, fs, n_s, alt_canary=alt_c, alt_stable=q_hat, psi0=psi0))
            for fc in range(n_c + 1)
            for fs in range(n_s + 1)
        )
        assert at_star == pytest.approx(1.0, rel=1e-9)
        assert worst <= at_star + 1e-9


def test_alternative_below_the_shifted_null_breaks_the_one_sided_bound() -> None:
    # Why the judge skips alternatives at or below psi0 x q_hat: then psi0 q* can exceed the alternative and a
    # canary better than psi0 x stable could push the expectation above one.
    psi0, q_hat, n_c, n_s = 1.5, 0.3, 10, 10
    alt_c = odds_alternative(q_hat, psi0 * 1.1)
    assert alt_c < psi0 * q_hat
    expectation = sum(
        binom_pmf(fc, n_c, 0.5 * psi0 * 0.3)
        * binom_pmf(fs, n_s, 0.3)
        * math.exp(two_binomial_log_e(fc, n_c, fs, n_s, alt_canary=alt_c, alt_stable=q_hat, psi0=psi0))
        for fc in range(n_c + 1)
        for fs in range(n_s + 1)
    )
    assert expectation > 1.0


def test_null_share_is_pooled_share_at_ratio_one() -> None:
    assert null_share(10, 30, 0.4, 0.2, 1.0) == pytest.approx((10 * 0.4 + 30 * 0.2) / 40)
    q = null_share(10, 30, 0.4, 0.2, 1.5)
    assert 0.0 < q < 1.0 / 1.5


def test_wilson_interval() -> None:
    low, high = wilson_interval(0, 2000)
    assert low == pytest.approx(0.0, abs=1e-15)
    assert high == pytest.approx(0.00192, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3)
    assert high == pytest.approx(0.5962, abs=1e-3)
