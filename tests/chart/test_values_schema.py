"""Wrong values fail before anything reaches the cluster, with a message that names the key: Helm checks
values.schema.json on install, upgrade, template and lint; what a schema cannot say, the templates check."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart.rendering import VALUE_SETS, Values, chart, lint, render_files

WRONG: list[tuple[str, Values, list[str]]] = [
    ("no replicas", {"replicas": 0}, ["/replicas", "minimum"]),
    ("typo in a key", {"replics": 2}, ["additional properties 'replics' not allowed"]),
    ("unknown dialect", {"metricSource": {"dialect": "otel"}}, ["/metricSource/dialect", "knative-otel"]),
    (
        "url without scheme",
        {"metricSource": {"prometheusUrl": "prometheus:9090"}},
        ["/metricSource/prometheusUrl"],
    ),
    ("namespaced without namespaces", {"rbac": {"scope": "namespaced"}}, ["/watchNamespaces", "minItems"]),
    ("namespaces with cluster scope", {"watchNamespaces": ["team-a"]}, ["/watchNamespaces", "maxItems"]),
    (
        "bad namespace name",
        {"rbac": {"scope": "namespaced"}, "watchNamespaces": ["Team_A"]},
        ["/watchNamespaces/0"],
    ),
    ("unknown rbac scope", {"rbac": {"scope": "global"}}, ["/rbac/scope"]),
    (
        "writable root",
        {"securityContext": {"readOnlyRootFilesystem": False}},
        ["/securityContext/readOnlyRootFilesystem"],
    ),
    ("root user", {"podSecurityContext": {"runAsNonRoot": False}}, ["/podSecurityContext/runAsNonRoot"]),
    (
        "added capability",
        {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
        ["/securityContext/capabilities/add"],
    ),
    ("no memory limit", {"resources": {"limits": {"memory": None}}}, ["/resources/limits", "memory"]),
    ("bad interval", {"serviceMonitor": {"interval": "30 seconds"}}, ["/serviceMonitor/interval"]),
    (
        "bad severity",
        {"prometheusRule": {"controllerDown": {"severity": "page"}}},
        ["/prometheusRule/controllerDown/severity"],
    ),
    ("bad digest", {"image": {"digest": "latest"}}, ["/image/digest"]),
    ("bad log format", {"controller": {"logFormat": "text"}}, ["/controller/logFormat"]),
    ("extra arg not a flag", {"controller": {"extraArgs": ["oops"]}}, ["/controller/extraArgs/0"]),
    ("low metrics port", {"controller": {"metricsPort": 80}}, ["/controller/metricsPort", "minimum"]),
]


def _error_of(values: Values) -> str:
    with pytest.raises(helm.HelmError) as caught:
        render_files(values)
    return str(caught.value)


@pytest.mark.parametrize(("values", "expected"), [(v, e) for _, v, e in WRONG], ids=[n for n, _, _ in WRONG])
def test_wrong_values_are_rejected_with_the_key_named(values: Values, expected: list[str]) -> None:
    message = _error_of(values)
    for part in expected:
        assert part in message, message
    # the schema check alone says the same, before any template runs
    with pytest.raises(helm.HelmValuesError):
        chart().validate_schema(dict(values))


@pytest.mark.parametrize("values", list(VALUE_SETS.values()), ids=list(VALUE_SETS))
def test_good_values_pass_the_schema(values: Values) -> None:
    chart().validate_schema(dict(values))


def test_template_checks_what_the_schema_cannot() -> None:
    message = _error_of({"replicas": 2, "podDisruptionBudget": {"minAvailable": 2}})
    assert "podDisruptionBudget.minAvailable (2) must be below the controller's pods (2)" in message
    message = _error_of({"sharding": {"shards": 3}, "replicas": 2})
    assert "sharding.shards=3 runs one pod per shard: leave replicas at 1 (it is 2)" in message


def test_lint_reports_wrong_values_as_errors() -> None:
    report: dict[str, Any] = lint({"replicas": 0})
    text = " ".join(report["errors"] + [m["error"] for m in report["messages"]])
    assert "/replicas" in text


def test_every_default_value_is_described_by_the_schema() -> None:
    """values.yaml and values.schema.json stay in step: no default key the schema does not know."""
    schema = chart().schema
    assert schema is not None

    def walk(values: Any, node: dict[str, Any], path: str) -> list[str]:
        missing: list[str] = []
        if not isinstance(values, dict) or node.get("type") != "object" or "properties" not in node:
            return missing
        for key, value in values.items():
            if key not in node["properties"]:
                missing.append(f"{path}.{key}")
            else:
                missing.extend(walk(value, node["properties"][key], f"{path}.{key}"))
        return missing

    assert walk(chart().values, schema, "") == []
