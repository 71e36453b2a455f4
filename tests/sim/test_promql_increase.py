"""The simulated Prometheus' increase(), as PromQL computes it (rollout_lab.sim.promql)."""

from __future__ import annotations

import math

from rollout.engine.evidence import sum_increases
from rollout_lab.sim.promql import extrapolated_increase


def test_two_samples_in_a_window_are_extrapolated_to_its_edges() -> None:
    # samples every 15 s at 5, 20 (and 35, outside); window (0, 30]: 10 requests between 5 and 20
    samples = [(5.0, 100.0), (20.0, 110.0), (35.0, 120.0)]
    # 5 s to the start and 10 s to the end are both under 1.1 x 15 s: extrapolated all the way, 10 x 30/15
    assert math.isclose(extrapolated_increase(samples, 0.0, 30.0) or 0.0, 20.0)


def test_the_start_is_not_extrapolated_past_the_counters_zero() -> None:
    # a new series: 2 at t=5 and 12 at t=20: it was zero 3 s before its first sample, not 5
    assert math.isclose(extrapolated_increase([(5.0, 2.0), (20.0, 12.0)], 0.0, 30.0) or 0.0, 10 * 28 / 15)


def test_far_edges_get_half_an_interval_and_resets_count_from_zero() -> None:
    samples = [(40.0, 50.0), (55.0, 5.0), (70.0, 25.0)]  # a reset between 40 and 55
    # raw 5 + 20 = 25 over 30 s; 40 s to the start and 30 s to the end are far: 7.5 s each way
    assert math.isclose(extrapolated_increase(samples, 0.0, 100.0) or 0.0, 25 * 45 / 30)


def test_the_zero_bound_applies_after_the_half_interval() -> None:
    # far from the start (40 s): half an interval (7.5 s); the counter was zero 20 s before: 7.5 stands
    samples = [(40.0, 10.0), (55.0, 20.0), (70.0, 25.0)]
    assert math.isclose(extrapolated_increase(samples, 0.0, 75.0) or 0.0, 15 * (30 + 7.5 + 5) / 30)


def test_a_series_with_one_sample_in_the_window_has_no_result() -> None:
    assert extrapolated_increase([(-5.0, 1.0), (10.0, 3.0)], 0.0, 15.0) is None
    assert (
        sum_increases([[(10.0, 3.0)], [(5.0, 0.0), (10.0, 4.0)]], 0.0, 15.0, extrapolated_increase)
        is not None
    )
