"""The controller's own metrics: what an analysis tick records."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from rollout.controller.metrics import ControllerMetrics


def _sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    value = registry.get_sample_value(name, labels or {})
    assert value is not None, name
    return value


def test_a_tick_observes_its_wait_once_per_rollout_measured() -> None:
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    metrics.observe_tick(rollouts=1000, queries=2, waited=1.2)  # the wave, answered on time
    metrics.observe_tick(rollouts=3, queries=2, waited=6.0)  # three stragglers, gathered late

    assert _sample(registry, "knrollout_analysis_ticks_total") == 2
    assert _sample(registry, "knrollout_analysis_queries_per_tick_count") == 2
    assert _sample(registry, "knrollout_analysis_answered_seconds_count") == 1003
    # the stragglers are the slowest 0.3%: the p99 is the wave's, not the late tick's
    assert _sample(registry, "knrollout_analysis_answered_seconds_bucket", {"le": "1.5"}) == 1000
    assert _sample(registry, "knrollout_analysis_answered_seconds_bucket", {"le": "5.0"}) == 1000
    assert _sample(registry, "knrollout_analysis_answered_seconds_bucket", {"le": "7.5"}) == 1003


def test_a_wait_measured_before_the_window_ended_counts_as_none() -> None:
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    metrics.observe_tick(rollouts=2, queries=1, waited=-0.2)  # clocks: never a negative wait

    assert _sample(registry, "knrollout_analysis_answered_seconds_bucket", {"le": "0.25"}) == 2
    assert _sample(registry, "knrollout_analysis_answered_seconds_sum") == 0.0
