"""Test martingales that compare a canary with stable on per-interval counts. Pure math, no state.

Notation (../shared/research/statistics.md): in one interval k the stable arm served n_S requests with f_S
"bad" ones (failed, or slower than a latency threshold), the canary n_C with f_C; w = n_C / (n_C + n_S) and
F = f_C + f_S. The model: within an interval the canary's bad rate is psi times stable's.

Conditional binomial form (statistics.md). Given F, f_C ~ Binomial(F, theta(psi)) with
theta(psi) = psi w / (psi w + 1 - w), so the likelihood ratio of psi against psi0 is

    log LR_k(psi; psi0) = f_C log(psi / psi0) - F log((psi w + 1 - w) / (psi0 w + 1 - w)).

For psi > psi0 it is a nonnegative supermartingale under every psi' <= psi0 (the expectation under
theta' = theta(psi') is (theta' a + (1 - theta') b)^F with a > 1 > b, increasing in theta', equal to 1 at
psi' = psi0); a mixture over a grid is too, so Ville's inequality bounds P(sup_t M_t >= 1/alpha) <= alpha.
Given the arm sizes the true law of f_C is hypergeometric rather than binomial; LR is convex in f_C, and the
hypergeometric is below the binomial in convex order (Hoeffding 1963), so the bound still holds.

Two-binomial form (Turner, Ly, Grunwald: e-variables for 2x2 tables). Given n_C and n_S the bad counts are
independent binomials, f_C ~ Bin(n_C, q_C), f_S ~ Bin(n_S, q_S). For the null q_C = psi0 q_S (any q_S) and a
fixed alternative (a, b), the e-value p_ab(data) / p_q*(data), with q* the null member closest to the
alternative in Kullback-Leibler divergence, has expectation <= 1 under every null member: log E_q[e] is
concave in q (each factor is affine in q), zero at q = q*, and its derivative at q* is the first-order
condition that defines q*. It also uses the requests that were not bad, so it is about twice as powerful as
the conditional form when bad outcomes are common (latency thresholds near the median).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def split(n_canary: int, n_stable: int) -> float | None:
    """Canary share w of the interval's requests, or None when the interval had no requests."""
    total = n_canary + n_stable
    return n_canary / total if total > 0 else None


def theta(psi: float, w: float) -> float:
    """Probability that a bad request came from the canary when its bad rate is psi times stable's."""
    return psi * w / (psi * w + 1.0 - w)


def conditional_log_lr(f_canary: int, f_stable: int, w: float, psi: float, psi0: float = 1.0) -> float:
    """log LR_k(psi; psi0) of one interval (statistics.md). Zero when there were no bad requests, or when one
    arm had no requests at all (then the split tells nothing)."""
    bad = f_canary + f_stable
    if bad == 0 or w <= 0.0 or w >= 1.0:
        return 0.0
    return f_canary * math.log(psi / psi0) - bad * math.log((psi * w + 1.0 - w) / (psi0 * w + 1.0 - w))


def logsumexp(values: Iterable[float]) -> float:
    xs = list(values)
    if not xs:
        return -math.inf
    top = max(xs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(x - top) for x in xs))


def log_mean_exp(values: Sequence[float]) -> float:
    """log of the equal-weight mixture (1/n) sum exp(x_i)."""
    return logsumexp(values) - math.log(len(values))


def beta_binomial_log_bf(bad_canary: int, bad_stable: int, w: float, concentration: float = 100.0) -> float:
    """Lindon & Malek's closed form at a constant split w: the Bayes factor of theta ~ Beta(k w, k (1 - w))
    against theta = w for the sequence of bad requests' arms,
    log B(a + N_C, b + N_S) - log B(a, b) - N_C log w - N_S log(1 - w)."""
    a = concentration * w
    b = concentration * (1.0 - w)
    return (
        _log_beta(a + bad_canary, b + bad_stable)
        - _log_beta(a, b)
        - bad_canary * math.log(w)
        - bad_stable * math.log(1.0 - w)
    )


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def odds_alternative(q: float, psi: float) -> float:
    """A bad share psi times as likely in odds as q: psi q / (1 - q + psi q). Stays inside (0, 1), and is
    psi q when q is small."""
    return psi * q / (1.0 - q + psi * q)


def null_share(n_canary: int, n_stable: int, alt_canary: float, alt_stable: float, psi0: float) -> float:
    """q*: the stable share of the null member {q_C = psi0 q, q_S = q} that maximises the alternative's
    expected log-likelihood. Root in (0, min(1, 1/psi0)) of
    psi0 N q^2 - (K (1 + psi0) + U psi0 + V) q + K = 0, with K = n_C a + n_S b, U = n_C (1 - a),
    V = n_S (1 - b), N = n_C + n_S."""
    total = n_canary + n_stable
    k = n_canary * alt_canary + n_stable * alt_stable
    u = n_canary * (1.0 - alt_canary)
    v = n_stable * (1.0 - alt_stable)
    a2 = psi0 * total
    a1 = -(k * (1.0 + psi0) + u * psi0 + v)
    disc = max(a1 * a1 - 4.0 * a2 * k, 0.0)
    # The smaller root is the one inside the feasible interval; written to avoid cancellation.
    return (2.0 * k) / (-a1 + math.sqrt(disc))


def two_binomial_log_e(
    f_canary: int,
    n_canary: int,
    f_stable: int,
    n_stable: int,
    *,
    alt_canary: float,
    alt_stable: float,
    psi0: float = 1.0,
) -> float:
    """log of the two-binomial e-value of one interval for the null q_C <= psi0 q_S against the alternative
    (alt_canary, alt_stable), which must be chosen before the interval's data is seen and must lie above the
    null (alt_canary > psi0 alt_stable): then psi0 q* <= alt_canary, and a canary better than psi0 x stable
    only lowers the expectation. Zero when an arm had no requests."""
    if n_canary <= 0 or n_stable <= 0:
        return 0.0
    q = null_share(n_canary, n_stable, alt_canary, alt_stable, psi0)
    qc = psi0 * q
    return (
        _xlogy(f_canary, alt_canary / qc)
        + _xlogy(n_canary - f_canary, (1.0 - alt_canary) / (1.0 - qc))
        + _xlogy(f_stable, alt_stable / q)
        + _xlogy(n_stable - f_stable, (1.0 - alt_stable) / (1.0 - q))
    )


def _xlogy(x: int, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1.0 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
