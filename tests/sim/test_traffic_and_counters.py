"""The simulator's traffic model and its counters as Prometheus holds them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rollout.engine.observations import LatencyHistogram, RequestCounts
from rollout_lab.sim.counters import CounterStore, ScrapeModel
from rollout_lab.sim.scenarios import (
    KNATIVE_BUCKETS,
    SCENARIOS,
    Fault,
    bucket_probabilities,
    latency_cdf,
    slow_share,
)
from rollout_lab.sim.traffic import CANARY, STABLE, LoadModel, TrafficSource


def quantile_from_cdf(fault: Fault, q: float) -> float:
    lo, hi = 1e-4, 100.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        med = 0.05 * fault.latency_scale
        cdf = 0.5 * (1 + math.erf(math.log(mid / med) / (fault.latency_sigma * math.sqrt(2))))
        lo, hi = (mid, hi) if cdf < q else (lo, mid)
    return lo


def test_load_integral_matches_per_second_sum() -> None:
    load = LoadModel(rps=20.0)
    phase = np.array([123.0])
    per_second = sum(
        20.0 * (1 + 0.3 * math.sin(2 * math.pi * (t + 0.5 + 123.0) / 3600)) for t in range(1000, 1015)
    )
    assert float(load.expected_requests(1000.0, 15.0, phase)[0]) == pytest.approx(per_second, rel=1e-4)


def test_latency_faults() -> None:
    base = bucket_probabilities(Fault())
    assert base.sum() == pytest.approx(1.0) and base.shape == (len(KNATIVE_BUCKETS) + 1,)
    tail = SCENARIOS["latency-p99-x1.2"].canary
    assert quantile_from_cdf(tail, 0.5) == pytest.approx(0.05, rel=1e-6)
    assert quantile_from_cdf(tail, 0.99) == pytest.approx(1.2 * quantile_from_cdf(Fault(), 0.99), rel=1e-6)
    one_pct = SCENARIOS["latency-tail"].canary
    # 1% of requests 500 ms slower: about 1% more above 500 ms.
    assert slow_share(one_pct) - slow_share(Fault()) == pytest.approx(0.01 * (1 - 0.0022), abs=5e-4)
    cold = SCENARIOS["cold-start"].canary
    assert np.allclose(latency_cdf(cold, 0.0), latency_cdf(Fault()))
    assert (
        latency_cdf(cold, 1.0)[KNATIVE_BUCKETS.index(1.0)] < latency_cdf(Fault())[KNATIVE_BUCKETS.index(1.0)]
    )


def test_traffic_split_errors_and_buckets() -> None:
    rng = np.random.default_rng(3)
    runs = 4000
    src = TrafficSource(LoadModel(rps=10.0), SCENARIOS["errors-plus-5pp"], runs, 2, rng)
    t = src.draw(0.0, 15.0, np.full(runs, 0.2), np.zeros(runs))
    n = t.requests.sum(axis=2)
    assert n[:, CANARY].sum() / n.sum() == pytest.approx(0.2, abs=0.01)
    assert (t.buckets.sum(axis=-1) == t.requests).all()
    canary_rate = t.failures[:, CANARY].sum() / n[:, CANARY].sum()
    stable_rate = t.failures[:, STABLE].sum() / n[:, STABLE].sum()
    assert canary_rate - stable_rate == pytest.approx(0.05, abs=0.005)
    assert stable_rate == pytest.approx(float(t.stable_error.mean()), rel=0.3)


def drive(store: CounterStore, src: TrafficSource, steps: int, weight: float) -> list[np.ndarray]:
    truth = []
    runs = store.values.shape[0]
    for k in range(steps):
        traffic = src.draw(15.0 * k, 15.0, np.full(runs, weight), np.zeros(runs))
        truth.append(traffic.requests.sum(axis=2))
        store.advance(traffic)
        store.scrape(15.0 * (k + 1))
    return truth


def test_view_returns_exact_counts_without_faults() -> None:
    rng = np.random.default_rng(4)
    model = ScrapeModel(missed=0.0, reset=0.0, replace=0.0)
    src = TrafficSource(LoadModel(rps=50.0), SCENARIOS["aa"], 3, 2, rng)
    store = CounterStore(3, 2, model, rng)
    truth = drive(store, src, 8, 0.3)
    view = store.view(1)
    got = view.requests(CANARY, 30.0, 90.0)
    assert isinstance(got, RequestCounts)
    assert got.requests == sum(int(truth[k][1, CANARY]) for k in range(2, 6))
    hist = view.histogram(STABLE, 0.0, 120.0)
    assert isinstance(hist, LatencyHistogram) and hist.total == sum(
        int(truth[k][1, STABLE]) for k in range(8)
    )
    only = view.histogram(STABLE, 0.0, 120.0, edges=(0.06, 0.35))
    assert isinstance(only, LatencyHistogram) and only.edges == (0.06, 0.35)
    assert only.slow(0.06) == hist.slow(0.06) and only.total == hist.total
    assert view.visible_until(120.0) == 105.0


def test_resets_replacements_and_missed_scrapes_lose_little_and_never_invent() -> None:
    rng = np.random.default_rng(5)
    model = ScrapeModel(missed=0.1, reset=0.05, replace=0.05)
    runs = 200
    src = TrafficSource(LoadModel(rps=50.0), SCENARIOS["aa"], runs, 2, rng)
    store = CounterStore(runs, 2, model, rng)
    truth = drive(store, src, 20, 0.5)
    lost = []
    for r in range(runs):
        view = store.view(r)
        windows = [(15.0 * k, 15.0 * (k + 2)) for k in range(0, 18, 2)]
        seen = 0
        for a, b in windows:
            m = view.requests(STABLE, a, b)
            assert isinstance(m, RequestCounts)
            seen += m.requests
        real = sum(int(truth[k][r, STABLE]) for k in range(18))
        assert seen <= real
        lost.append(1 - seen / real)
    # Each restart or replacement (10% of pod-intervals here, 20x the simulator's default) loses about half
    # an interval of one pod (more after a missed scrape); counts are never invented or doubled.
    assert 0.03 < float(np.mean(lost)) < 0.1
