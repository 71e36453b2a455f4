"""The units people read metrics in: error rates in %, latencies in ms (measured in seconds). One place, so
that the judges' accounts, the status, the Events and the demo all write a value the same way."""

from __future__ import annotations

from rollout.api.policy import BuiltinMetric, Metric, RolloutPolicySpec


def metric_unit(metric: Metric) -> str:
    """A metric's unit, from its builtin; a custom query named like an error rate reads in %."""
    if metric.builtin is not None:
        return "%" if metric.builtin == BuiltinMetric.ERROR_RATE else "ms"
    return "%" if "error" in metric.name else ""


def unit_of(policy: RolloutPolicySpec, name: str) -> str:
    """The unit of the policy's metric `name` (see `metric_unit`)."""
    for m in policy.analysis.metrics:
        if m.name == name:
            return metric_unit(m)
    return "%" if "error" in name else ""


def in_unit(value: float | None, unit: str = "") -> str:
    """A metric's value in its unit."""
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.2%}"
    if unit == "ms":
        return f"{value * 1000:.0f}ms" if value >= 0.01 else f"{value * 1000:.2g}ms"
    return f"{value:.4g}"
