from typing import Any

import pytest

from rollout.api.load import parse_policy, parse_policy_spec, policy_hash
from rollout.api.policy import BuiltinMetric, NoDataPolicy, RolloutPolicySpec
from rollout.api.strategy import CanaryStrategy


def spec_of(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 50, "bake": "5m"}]}}}
    base.update(overrides)
    return base


def problems(data: Any) -> list[str]:
    _, found = parse_policy_spec(data)
    return [str(p) for p in found]


def test_minimal_policy_gets_safe_defaults() -> None:
    spec, found = parse_policy_spec(spec_of())
    assert found == []
    assert spec is not None
    assert spec.analysis.no_data is NoDataPolicy.WAIT
    assert spec.analysis.alpha == 0.01
    assert [m.builtin for m in spec.analysis.metrics] == [BuiltinMetric.ERROR_RATE, BuiltinMetric.LATENCY]
    assert all(m.compare is not None and m.compare.sequential for m in spec.analysis.metrics)
    assert spec.deadlines.candidate_ready == 600
    assert spec.deadlines.on_rollout_deadline == "rollback"
    ladder = spec.strategy.canary.ladder() if spec.strategy.canary else []
    assert [(s.weight, s.bake) for s in ladder] == [(10, 60.0), (50, 300.0)]


def test_shorthand_expands_to_a_ladder_ending_at_max_weight() -> None:
    c = CanaryStrategy(step_weight=20, max_weight=50, interval=30)
    assert [s.weight for s in c.ladder()] == [20, 40, 50]
    assert {s.bake for s in c.ladder()} == {30.0}


def test_wire_round_trip_is_stable() -> None:
    spec, _ = parse_policy_spec(spec_of())
    assert spec is not None
    again, found = parse_policy_spec(spec.to_wire())
    assert found == [] and again == spec
    assert policy_hash(spec) == policy_hash(again)
    changed, _ = parse_policy_spec(spec_of(historyLimit=3))
    assert changed is not None and policy_hash(changed) != policy_hash(spec)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"strategy": {}}, "set exactly one strategy"),
        ({"strategy": {"canary": {"steps": [{"weight": 5}]}, "abTest": {}}}, "found canary, abTest"),
        ({"strategy": {"canary": {}}}, "give `steps`"),
        ({"strategy": {"canary": {"stepWeight": 10}}}, "needs both"),
        ({"strategy": {"canary": {"steps": [{"weight": 10, "pause": {}}]}}}, "exactly one of `weight`"),
        ({"strategy": {"canary": {"steps": [{"weight": 101}]}}}, "spec.strategy.canary.steps[0].weight"),
        ({"strategy": {"canary": {"steps": [{"weight": 10, "bake": 30}]}}}, "no unit"),
        ({"strategy": {"canary": {"steps": [{"weight": 10, "bake": "soon"}]}}}, "not a duration"),
        ({"strategy": {"canry": {}}}, "did you mean `canary`?"),
    ],
)
def test_strategy_errors_name_the_field_and_the_fix(data: Any, expected: str) -> None:
    assert any(expected in p for p in problems(data)), problems(data)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ({"name": "m", "builtin": "errorRate"}, "can never decide"),
        ({"name": "m", "builtin": "errorRate", "query": "up", "threshold": {"max": 1}}, "exactly one of"),
        ({"name": "m", "builtin": "errors", "threshold": {"max": 1}}, "is not allowed"),
        ({"name": "m", "builtin": "errorRate", "threshold": {}}, "needs `min`, `max`"),
        ({"name": "m", "builtin": "errorRate", "threshold": {"min": 2, "max": 1}}, "no value could pass"),
        (
            {"name": "m", "builtin": "errorRate", "quantile": 0.9, "threshold": {"max": 1}},
            "only to `builtin: latency`",
        ),
        (
            {"name": "Bad_Name", "builtin": "errorRate", "threshold": {"max": 1}},
            "spec.analysis.metrics[0].name",
        ),
        (
            {"name": "m", "builtin": "latency", "threshold": {"max": 1}, "noData": "skip"},
            "'skip' is not allowed",
        ),
    ],
)
def test_metric_errors(metric: dict[str, Any], expected: str) -> None:
    found = problems(spec_of(analysis={"metrics": [metric]}))
    assert any(expected in p for p in found), found


def test_duplicate_metric_names_rejected() -> None:
    m = {"name": "m", "builtin": "errorRate", "threshold": {"max": 0.01}}
    assert any("used twice" in p for p in problems(spec_of(analysis={"metrics": [m, m]})))


def test_auth_choices_are_exclusive() -> None:
    token = {"secretKeyRef": {"name": "a", "key": "b"}}
    src: dict[str, Any] = {"prometheus": {"bearerToken": token, "basicAuth": {"secretName": "s"}}}
    assert any("not both" in p for p in problems(spec_of(metricSource=src)))
    src = {"prometheus": {"bearerToken": {"file": "/t", **token}}}
    found = problems(spec_of(metricSource=src))
    assert any(
        "spec.metricSource.prometheus.bearerToken.file" in p and "cannot name a file" in p for p in found
    )
    src = {"ref": "shared", "prometheus": {"address": "http://mine:9090"}}
    assert any(
        "spec.metricSource.prometheus" in p and "ref" in p for p in problems(spec_of(metricSource=src))
    )
    src = {"prometheus": {"address": "http://p:9090", "timeout": "8760h"}}
    assert any("spec.metricSource.prometheus.timeout" in p for p in problems(spec_of(metricSource=src)))
    src = {"prometheus": {"address": "prometheus:9090"}}
    assert any("spec.metricSource.prometheus.address" in p for p in problems(spec_of(metricSource=src)))


def test_whole_object_parses_with_metadata() -> None:
    policy, found = parse_policy(
        {
            "apiVersion": "knrollout.dev/v1alpha1",
            "kind": "RolloutPolicy",
            "metadata": {"name": "std", "namespace": "default", "uid": "x", "resourceVersion": "4"},
            "spec": spec_of(),
        }
    )
    assert found == [] and policy is not None
    assert policy.metadata.name == "std"


def test_wrong_kind_is_reported() -> None:
    _, found = parse_policy({"apiVersion": "knrollout.dev/v1", "kind": "RolloutPolicy", "spec": spec_of()})
    assert any(p.path == "apiVersion" for p in found)


def test_models_are_immutable() -> None:
    spec = RolloutPolicySpec.model_validate(spec_of())
    with pytest.raises(Exception, match="frozen"):
        spec.history_limit = 3  # type: ignore[misc]
