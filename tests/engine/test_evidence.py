"""Evidence accounting: per-series counter samples to per-interval counts."""

from __future__ import annotations

import math

import pytest

from rollout.engine.evidence import (
    histogram_increase,
    latency_histogram,
    request_counts,
    round_count,
    series_increase,
    sum_increases,
)


def test_plain_increase_between_window_edges() -> None:
    samples = [(0.0, 10.0), (15.0, 14.0), (30.0, 20.0), (45.0, 27.0)]
    assert series_increase(samples, 15.0, 45.0) == 13.0
    assert series_increase(samples, 0.0, 15.0) == 4.0
    assert series_increase(samples, 45.0, 60.0) == 0.0  # no new sample yet


def test_counter_reset_counts_the_new_value() -> None:
    # The container restarted between 15 s and 30 s: the counter dropped to 3; 3 requests since the restart.
    samples = [(0.0, 10.0), (15.0, 14.0), (30.0, 3.0), (45.0, 8.0)]
    assert series_increase(samples, 0.0, 45.0) == 4.0 + 3.0 + 5.0


def test_missed_scrape_moves_counts_to_the_next_window() -> None:
    samples = [(0.0, 10.0), (30.0, 20.0)]  # the scrape at 15 s is missing
    assert series_increase(samples, 0.0, 15.0) == 0.0
    assert series_increase(samples, 15.0, 30.0) == 10.0
    with_nan = [(0.0, 10.0), (15.0, math.nan), (30.0, 20.0)]  # a stale marker is not a sample
    assert series_increase(with_nan, 15.0, 30.0) == 10.0


def test_pods_come_and_go() -> None:
    old_pod = [(0.0, 100.0), (15.0, 110.0)]  # stops after 15 s
    new_pod = [(30.0, 7.0), (45.0, 12.0)]  # born after 15 s: its first value counts in full
    assert sum_increases([old_pod, new_pod], 15.0, 45.0) == 12.0
    assert sum_increases([old_pod, new_pod], 0.0, 15.0) == 10.0
    # A plain sum of the two series would read 110 -> 7 as a reset and miss or double-count requests.
    assert series_increase([], 0.0, 15.0) is None
    assert sum_increases([[], []], 0.0, 15.0) is None
    assert series_increase([(50.0, 3.0)], 0.0, 45.0) is None


def test_rounding_of_extrapolated_increases() -> None:
    assert round_count(10.49) == 10
    assert round_count(10.5) == 11
    assert round_count(-0.3) == 0
    assert round_count(math.nan) == 0
    counts = request_counts(10.4, 10.6)  # extrapolation made failures exceed requests by a fraction
    assert (counts.requests, counts.failures) == (10, 10)


def test_histogram_repair() -> None:
    h = latency_histogram({0.1: 5.2, 0.05: 6.4, 0.2: 9.0, math.inf: 8.6})
    assert h.edges == (0.05, 0.1, 0.2)
    assert h.cumulative == (6, 6, 9)  # non-decreasing
    assert h.total == 9  # at least the largest bucket
    assert h.slow(0.1) == 3
    without_inf = latency_histogram({0.1: 4.0}, total=10.2)
    assert without_inf.total == 10


def test_histogram_from_per_pod_bucket_series() -> None:
    series = {
        0.1: [[(0.0, 5.0), (15.0, 9.0)], [(15.0, 2.0)]],
        math.inf: [[(0.0, 6.0), (15.0, 12.0)], [(15.0, 3.0)]],
    }
    h = histogram_increase(series, 0.0, 15.0)
    assert h is not None
    assert h.cumulative == (6,)
    assert h.total == 9
    assert h.slow(0.1) == 3
    assert histogram_increase({0.1: [[]]}, 0.0, 15.0) is None
    assert h.quantile(0.5) == pytest.approx(0.1 * 4.5 / 6)
