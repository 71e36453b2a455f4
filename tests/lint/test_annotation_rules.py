"""Autoscaling annotations (catalogue in rollout.knative.autoscaling) and rollout-duration."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.knative.autoscaling import CATALOGUE, PREFIX, lookup, parse_go_duration, validate_annotations
from rollout.lint.findings import Severity
from tests.lint.helpers import at, edited, lint, only, rules, service

A = PREFIX


def template(**annotations: Any) -> dict[str, Any]:
    return service(policy_name=None, template_annotations={A + k: v for k, v in annotations.items()})


def key_path(name: str) -> str:
    return f'spec.template.metadata.annotations["{A}{name}"]'


@pytest.mark.parametrize(
    "annotations",
    [
        {"min-scale": "1", "max-scale": "10", "initial-scale": "2", "activation-scale": "2"},
        {"class": "kpa.autoscaling.knative.dev", "metric": "rps", "target": "150"},
        {"class": "hpa.autoscaling.knative.dev", "metric": "memory", "target": "75"},
        {"class": "custom.example.com/autoscaler", "metric": "queue-length"},
        {"window": "2m", "panic-window-percentage": "10.0", "panic-threshold-percentage": "200"},
        {
            "scale-down-delay": "15m",
            "scale-to-zero-pod-retention-period": "1m5s",
            "target-burst-capacity": "-1",
        },
        {"target-utilization-percentage": "70", "metric-aggregation-algorithm": "weighted-exponential"},
        {"max-scale": "0", "min-scale": "3"},  # 0 = unlimited
    ],
)
def test_valid_annotations(annotations: dict[str, str]) -> None:
    assert lint(template(**annotations)).findings == []


@pytest.mark.parametrize(
    ("annotations", "bad_key"),
    [
        ({"min-scale": "5", "max-scale": "2"}, "max-scale"),
        ({"min-scale": "1.5"}, "min-scale"),
        ({"min-scale": "-1"}, "min-scale"),
        ({"max-scale": "lots"}, "max-scale"),
        ({"initial-scale": "two"}, "initial-scale"),
        ({"activation-scale": "0"}, "activation-scale"),
        ({"activation-scale": "5", "max-scale": "3"}, "activation-scale"),
        ({"class": "foo.autoscaling.knative.dev"}, "class"),
        ({"metric": "cpu"}, "metric"),  # the KPA (default class) scales on concurrency or rps
        ({"target": "0"}, "target"),
        ({"target": "ten"}, "target"),
        ({"target-utilization-percentage": "150"}, "target-utilization-percentage"),
        ({"panic-window-percentage": "0.5"}, "panic-window-percentage"),
        ({"panic-threshold-percentage": "100"}, "panic-threshold-percentage"),
        ({"target-burst-capacity": "-2"}, "target-burst-capacity"),
        ({"window": "5s"}, "window"),
        ({"window": "2h"}, "window"),
        ({"window": "60"}, "window"),
        ({"window": "6500ms"}, "window"),
        ({"scale-down-delay": "-1s"}, "scale-down-delay"),
        ({"scale-to-zero-pod-retention-period": "2h"}, "scale-to-zero-pod-retention-period"),
        ({"metric-aggregation-algorithm": "median"}, "metric-aggregation-algorithm"),
    ],
)
def test_invalid_values_are_errors_on_the_key(annotations: dict[str, str], bad_key: str) -> None:
    report = lint(template(**annotations))
    assert key_path(bad_key) in at(report, "autoscaling/invalid-value"), report.findings
    assert {f.severity for f in report.findings} == {Severity.ERROR}


def test_legacy_spelling_warns_with_the_canonical_name() -> None:
    report = lint(template(minScale="1", targetBurstCapacity="0", panicThresholdPercentage="150"))
    legacy = only(report, "autoscaling/legacy-name")
    assert {f.path for f in legacy} == {
        key_path("minScale"),
        key_path("targetBurstCapacity"),
        key_path("panicThresholdPercentage"),
    }
    assert all(f.severity == Severity.WARNING for f in legacy)
    assert any(f"{A}min-scale" in f.hint for f in legacy)
    assert rules(report) == {"autoscaling/legacy-name"}


def test_legacy_values_are_validated_too() -> None:
    report = lint(template(minScale="5", maxScale="2"))
    assert at(report, "autoscaling/invalid-value") == [key_path("maxScale")]


def test_canonical_wins_over_legacy_and_legacy_is_reported_as_ignored() -> None:
    report = lint(template(**{"min-scale": "1", "minScale": "7", "max-scale": "3"}))
    assert "autoscaling/invalid-value" not in rules(report)  # 1 <= 3: the legacy 7 is not read
    [finding] = only(report, "autoscaling/legacy-name")
    assert "ignored" in finding.message


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("scaleUpDelay", "scale-down-delay"), ("minscale", "min-scale"), ("max-replicas", None)],
)
def test_names_that_do_not_exist_are_errors(name: str, suggestion: str | None) -> None:
    [finding] = lint(template(**{name: "1"})).findings
    assert finding.rule == "autoscaling/unknown-name" and finding.severity == Severity.ERROR
    assert finding.path == key_path(name)
    if suggestion:
        assert f"{A}{suggestion}" in finding.hint


def test_unquoted_number_is_reported_with_the_quoting_fix() -> None:
    [finding] = lint(template(**{"min-scale": 3})).findings
    assert finding.rule == "manifest/metadata" and '"3"' in finding.hint


@pytest.mark.parametrize(("kind", "severity"), [("Service", Severity.ERROR), ("Route", Severity.WARNING)])
def test_autoscaling_annotation_on_the_object_itself(kind: str, severity: Severity) -> None:
    obj = (
        service(policy_name=None)
        if kind == "Service"
        else {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Route",
            "metadata": {"name": "front"},
            "spec": {"traffic": [{"configurationName": "shop", "percent": 100}]},
        }
    )
    obj = edited(obj, ("metadata", "annotations"), {A + "min-scale": "1"})
    [finding] = lint(obj).findings
    assert finding.rule == "autoscaling/wrong-place" and finding.severity == severity
    assert finding.path == f'metadata.annotations["{A}min-scale"]'


@pytest.mark.parametrize(
    ("value", "ok"), [("300s", True), ("5m", True), ("1.5s", False), ("-5s", False), ("soon", False)]
)
def test_rollout_duration(value: str, ok: bool) -> None:
    obj = edited(
        service(policy_name=None),
        ("metadata", "annotations"),
        {"serving.knative.dev/rollout-duration": value},
    )
    assert (rules(lint(obj)) == set()) == ok


def test_catalogue_lookup_and_go_durations() -> None:
    assert all(lookup(a.key).annotation is a and not lookup(a.key).legacy for a in CATALOGUE)
    assert lookup(A + "maxScale").legacy and lookup(A + "scaleUpDelay").annotation is None
    assert [parse_go_duration(t) for t in ("0", "1m30s", "-2s", "500ms", "1h", "5", " 5s", "")] == [
        0.0,
        90.0,
        -2.0,
        0.5,
        3600.0,
        None,
        None,
        None,
    ]


def test_initial_scale_zero_depends_on_the_cluster() -> None:
    [problem] = validate_annotations({A + "initial-scale": "0"})
    assert "allow-zero-initial-scale" in problem.message
