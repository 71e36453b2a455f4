"""Validity rules that point below the model raising them (rollout.api.policy.field_error)."""

from typing import Any

import pytest

from rollout.api.load import parse_policy_spec
from rollout.api.promql import VARIABLES


def found(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    _, problems = parse_policy_spec(spec)
    return [(p.path, p.message, p.hint) for p in problems]


def canary(**canary: Any) -> dict[str, Any]:
    return {"strategy": {"canary": canary}}


def with_metric(metric: dict[str, Any]) -> dict[str, Any]:
    return {**canary(steps=[{"weight": 10}]), "analysis": {"metrics": [metric]}}


@pytest.mark.parametrize(
    ("steps", "path"),
    [
        ([{"weight": 10}, {"weight": 10}], "spec.strategy.canary.steps[1].weight"),
        ([{"weight": 20}, {"pause": {}}, {"weight": 10}], "spec.strategy.canary.steps[2].weight"),
        (
            [{"weight": 5}, {"weight": 25}, {"weight": 50}, {"weight": 25}],
            "spec.strategy.canary.steps[3].weight",
        ),
    ],
)
def test_ladder_weights_must_strictly_increase(steps: list[dict[str, Any]], path: str) -> None:
    problems = found(canary(steps=steps))
    assert [p[0] for p in problems] == [path]
    assert "strictly increase" in problems[0][1]


def test_increasing_ladder_with_pauses_is_valid() -> None:
    assert (
        found(canary(steps=[{"weight": 5}, {"pause": {}}, {"weight": 50}, {"pause": {"duration": "1m"}}]))
        == []
    )


def test_max_weight_zero_is_rejected_with_the_field() -> None:
    assert [p[0] for p in found(canary(stepWeight=5, maxWeight=0))] == ["spec.strategy.canary.maxWeight"]


def test_a_probe_must_lie_below_the_first_step() -> None:
    problems = found(canary(steps=[{"pause": {}}, {"weight": 5}], probe={"weight": 5}))
    assert [p[0] for p in problems] == ["spec.strategy.canary.probe.weight"]
    assert "not below the first step's weight (5)" in problems[0][1] and "weight 1" in problems[0][2]
    assert found(canary(stepWeight=10, maxWeight=50, probe={"weight": 2, "bake": "20s"})) == []


@pytest.mark.parametrize(
    ("bound", "value", "hint"), [("max", 5, "0.05"), ("min", -0.1, "0..1"), ("max", 250, "0..1")]
)
def test_error_rate_threshold_is_a_fraction(bound: str, value: float, hint: str) -> None:
    problems = found(with_metric({"name": "e", "builtin": "errorRate", "threshold": {bound: value}}))
    assert [p[0] for p in problems] == [f"spec.analysis.metrics[0].threshold.{bound}"]
    assert hint in problems[0][2]


def test_latency_threshold_is_not_bounded_by_one() -> None:
    assert found(with_metric({"name": "l", "builtin": "latency", "threshold": {"max": 2.5}})) == []


def test_unknown_template_variable_names_the_query_and_the_known_ones() -> None:
    problems = found(
        with_metric(
            {
                "name": "q",
                "query": 'sum(rate(x{ns="{{ namespace }}", s="{{svc}}"}[1m]))',
                "threshold": {"max": 1},
            }
        )
    )
    assert [p[0] for p in problems] == ["spec.analysis.metrics[0].query"]
    assert "{{ svc }}" in problems[0][1]
    assert all(v in problems[0][1] for v in VARIABLES)


def test_name_variable_outside_quotes_is_rejected() -> None:
    problems = found(
        with_metric({"name": "q", "query": "sum(x{ns={{ namespace }}})", "threshold": {"max": 1}})
    )
    assert [p[0] for p in problems] == ["spec.analysis.metrics[0].query"]
    assert "inside quotes" in problems[0][1]


def test_every_known_template_variable_is_accepted() -> None:
    query = " + ".join(f'x{{a="{{{{{v}}}}}"}}' for v in VARIABLES)
    assert found(with_metric({"name": "q", "query": query, "threshold": {"max": 1}})) == []
