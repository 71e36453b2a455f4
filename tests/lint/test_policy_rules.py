"""RolloutPolicy documents: the model's problems located in the file, and each semantic rule."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.lint.findings import Severity
from tests.lint.helpers import at, lint, lint_text, only, policy, rules

CANARY = {"canary": {"steps": [{"weight": 10, "bake": "2m"}, {"weight": 50, "bake": "2m"}]}}


def spec(strategy: dict[str, Any] | None = None, **parts: Any) -> dict[str, Any]:
    return {"strategy": strategy or CANARY, **parts}


def metric(**fields: Any) -> dict[str, Any]:
    return {"name": "m", **fields}


def analysis(*metrics: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"metrics": list(metrics), **fields} if metrics else fields


def test_a_sound_policy_is_clean() -> None:
    assert lint(policy(spec=spec())).findings == []


def test_model_problems_are_located_at_their_line() -> None:
    text = """\
apiVersion: knrollout.dev/v1alpha1
kind: RolloutPolicy
metadata:
  name: std
spec:
  strategy:
    canary:
      steps:
        - weight: 25
        - weight: 10
  analysis:
    interval: 30
"""
    report = lint_text(text)
    found = {(f.path, f.line) for f in only(report, "policy/schema")}
    assert found == {("spec.strategy.canary.steps[1].weight", 10), ("spec.analysis.interval", 12)}
    assert all(f.hint or "for example" in f.message for f in report.findings), report.findings


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({"strategy": {"canry": {}}}, "spec.strategy.canry"),
        (
            {"strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 10}]}}},
            "spec.strategy.canary.steps[1].weight",
        ),
        ({"strategy": {"canary": {"steps": [{"weight": 120}]}}}, "spec.strategy.canary.steps[0].weight"),
        (
            {"strategy": {"canary": {"steps": [{"weight": 10, "bake": "soon"}]}}},
            "spec.strategy.canary.steps[0].bake",
        ),
        (
            spec(analysis=analysis(metric(builtin="errorRate", threshold={"max": 5}))),
            "spec.analysis.metrics[0].threshold.max",
        ),
        (
            spec(analysis=analysis(metric(query="sum({{ nope }})", threshold={"max": 1}))),
            "spec.analysis.metrics[0].query",
        ),
        (spec(webhooks=[{"name": "a", "type": "step", "url": "ftp://x"}]), "spec.webhooks[0].url"),
        (
            spec(webhooks=[{"name": "a", "type": "step", "url": "https://user:secret@hooks.example.com/x"}]),
            "spec.webhooks[0].url",
        ),
        (
            spec(webhooks=[{"name": "a", "type": "step", "url": "http://h/x", "timeout": "1h"}]),
            "spec.webhooks[0].timeout",
        ),
        (
            spec(metricSource={"prometheus": {"bearerToken": {"file": "/t"}}}),
            "spec.metricSource.prometheus.bearerToken.file",
        ),
        (
            spec(
                webhooks=[
                    {"name": "a", "type": "step", "url": "http://a"},
                    {"name": "a", "type": "step", "url": "http://b"},
                ]
            ),
            "spec",
        ),
        (
            spec(
                analysis=analysis(
                    metric(builtin="errorRate", compare={}), metric(builtin="latency", compare={})
                )
            ),
            "spec.analysis",
        ),
        (spec({"abTest": {"controlTag": "arm", "treatmentTag": "arm"}}), "spec.strategy.abTest"),
        (spec({"abTest": {"routing": "split", "splitPercent": 100}}), "spec.strategy.abTest"),
        (spec({"blueGreen": {"previewTag": "canary"}}), "spec.strategy.blueGreen"),
        (
            spec(analysis=analysis(metric(query="sum(x{ns={{ namespace }}})", threshold={"max": 1}))),
            "spec.analysis.metrics[0].query",
        ),
    ],
)
def test_model_problems_are_schema_errors(obj: dict[str, Any], path: str) -> None:
    report = lint(policy(spec=obj))
    assert path in at(report, "policy/schema"), report.findings


def test_unknown_top_level_field_and_bad_metadata() -> None:
    obj = policy(spec=spec()) | {"strategy": {}}
    obj["metadata"]["labels"] = {"team": 7}
    report = lint(obj)
    assert "strategy" in at(report, "policy/schema")
    assert "metadata.labels.team" in at(report, "manifest/metadata")


@pytest.mark.parametrize(
    ("obj", "rule", "path", "severity"),
    [
        (
            spec({"canary": {"steps": [{"weight": 50, "bake": "2m"}, {"weight": 100, "bake": "2m"}]}}),
            "policy/weight-100",
            "spec.strategy.canary.steps[1].weight",
            Severity.WARNING,
        ),
        (
            spec({"canary": {"steps": [{"weight": 0, "bake": "2m"}, {"weight": 50, "bake": "2m"}]}}),
            "policy/weight-zero",
            "spec.strategy.canary.steps[0].weight",
            Severity.WARNING,
        ),
        (
            spec({"canary": {"stepWeight": 60, "maxWeight": 50}}),
            "policy/step-weight",
            "spec.strategy.canary.stepWeight",
            Severity.WARNING,
        ),
        (
            spec(analysis={"interval": "5s"}),
            "policy/interval-short",
            "spec.analysis.interval",
            Severity.WARNING,
        ),
        (
            spec({"canary": {"steps": [{"weight": 10, "bake": "20s"}, {"weight": 50, "bake": "2m"}]}}),
            "policy/bake-shorter-than-interval",
            "spec.strategy.canary.steps[0].bake",
            Severity.WARNING,
        ),
        (
            spec({"canary": {"interval": "10s", "stepWeight": 25, "maxWeight": 50}}),
            "policy/bake-shorter-than-interval",
            "spec.strategy.canary.interval",
            Severity.WARNING,
        ),
        (
            spec(
                {"canary": {"steps": [{"weight": 10, "bake": "1m"}, {"weight": 50, "bake": "2m"}]}},
                analysis={"warmup": "45s"},
            ),
            "policy/bake-shorter-than-interval",
            "spec.strategy.canary.steps[0].bake",
            Severity.WARNING,
        ),
        (
            spec({"blueGreen": {"analysisDuration": "10s"}}),
            "policy/bake-shorter-than-interval",
            "spec.strategy.blueGreen.analysisDuration",
            Severity.WARNING,
        ),
        (
            spec(
                deadlines={"rollout": "3m"},
                analysis=analysis(metric(builtin="errorRate", threshold={"max": 0.01})),
            ),
            "policy/deadline",
            "spec.deadlines.rollout",
            Severity.ERROR,
        ),
        (
            spec(deadlines={"rollout": "3m"}),  # default metrics may end steps early: only a warning
            "policy/deadline",
            "spec.deadlines.rollout",
            Severity.WARNING,
        ),
        (
            spec({"abTest": {"duration": "3h"}}),  # longer than the default 2h deadline
            "policy/deadline",
            "spec",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="latency", threshold={"max": 500}))),
            "policy/latency-unit",
            "spec.analysis.metrics[0].threshold.max",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="latency", compare={"latencyEdges": [0.5, 0.25]}))),
            "policy/latency-edges",
            "spec.analysis.metrics[0].compare.latencyEdges",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="latency", compare={"latencyEdges": [100, 250]}))),
            "policy/latency-unit",
            "spec.analysis.metrics[0].compare.latencyEdges",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="errorRate", threshold={"max": 1}))),
            "policy/metric-never-decides",
            "spec.analysis.metrics[0].threshold",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="latency", threshold={"min": 0}))),
            "policy/metric-never-decides",
            "spec.analysis.metrics[0].threshold",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="errorRate", threshold={"max": 1}, compare={}))),
            "policy/threshold-never-fails",
            "spec.analysis.metrics[0].threshold",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="errorRate", threshold={"min": 0.01, "max": 0.05}))),
            "policy/error-rate-min",
            "spec.analysis.metrics[0].threshold.min",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="errorRate", compare={}, dryRun=True))),
            "policy/nothing-decides",
            "spec.analysis.metrics",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="errorRate", compare={}), noData="pass")),
            "policy/no-data-passes",
            "spec.analysis.metrics",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(builtin="errorRate", threshold={"max": 0.01}), minRequests=0)),
            "policy/min-requests-zero",
            "spec.analysis.minRequests",
            Severity.WARNING,
        ),
        (
            spec(analysis={"failureLimit": {"consecutive": 6, "total": 5}}),
            "policy/failure-limit",
            "spec.analysis.failureLimit.consecutive",
            Severity.WARNING,
        ),
        (
            spec(analysis=analysis(metric(query="sum(rate(x[{{ interval }}])", threshold={"max": 1}))),
            "policy/promql-syntax",
            "spec.analysis.metrics[0].query",
            Severity.ERROR,
        ),
        (
            spec(analysis=analysis(metric(query='x{a="b}', threshold={"max": 1}))),
            "policy/promql-syntax",
            "spec.analysis.metrics[0].query",
            Severity.ERROR,
        ),
        (
            spec(analysis=analysis(metric(query="   ", threshold={"max": 1}))),
            "policy/promql-syntax",
            "spec.analysis.metrics[0].query",
            Severity.ERROR,
        ),
        (
            spec(webhooks=[{"name": "a", "type": "step", "url": "http://localhost:8080/check"}]),
            "policy/url",
            "spec.webhooks[0].url",
            Severity.WARNING,
        ),
        (
            spec(webhooks=[{"name": "a", "type": "step", "url": "http:///no-host"}]),
            "policy/url",
            "spec.webhooks[0].url",
            Severity.ERROR,
        ),
        (
            spec(webhooks=[{"name": "a", "type": "step", "url": "http://hooks:99999/x"}]),
            "policy/url",
            "spec.webhooks[0].url",
            Severity.ERROR,
        ),
        (
            spec(metricSource={"prometheus": {"address": "http://prometheus.team-a:9090"}}),
            "policy/metric-source-grant",
            "spec.metricSource.prometheus.address",
            Severity.WARNING,
        ),
        (
            spec(metricSource={"prometheus": {"address": "http://prometheus:9090/api/v1/query"}}),
            "policy/url",
            "spec.metricSource.prometheus.address",
            Severity.WARNING,
        ),
        (
            spec({"blueGreen": {"previewTag": "1preview"}}),
            "policy/tag-name",
            "spec.strategy.blueGreen.previewTag",
            Severity.ERROR,
        ),
        (
            spec({"abTest": {"routing": "header", "splitPercent": 30, "duration": "30m"}}),
            "policy/ab-split",
            "spec.strategy.abTest.splitPercent",
            Severity.WARNING,
        ),
        (
            spec({"abTest": {"duration": "30m", "onInconclusive": "rollback"}}),
            "policy/inconclusive-unused",
            "spec.strategy.abTest.onInconclusive",
            Severity.WARNING,
        ),
        (
            spec({"blueGreen": {"manualPromotion": True, "onInconclusive": "hold"}}),
            "policy/inconclusive-unused",
            "spec.strategy.blueGreen.onInconclusive",
            Severity.WARNING,
        ),
        (
            spec(
                {"canary": {"steps": [{"weight": 10}, {"pause": {}}], "onInconclusive": "hold"}},
            ),
            "policy/inconclusive-unused",
            "spec.strategy.canary.onInconclusive",
            Severity.WARNING,
        ),
        (
            spec(
                {"canary": {**CANARY["canary"], "onInconclusive": "hold"}},
                analysis=analysis(metric(builtin="errorRate", threshold={"max": 0.05})),
            ),
            "policy/inconclusive-unused",
            "spec.strategy.canary.onInconclusive",
            Severity.WARNING,
        ),
        (
            spec({"abTest": {"duration": "30m", "promoteOnSuccess": True, "onInconclusive": "promote"}}),
            "policy/experiment-promotes-inconclusive",
            "spec.strategy.abTest.onInconclusive",
            Severity.WARNING,
        ),
    ],
)
def test_semantic_rule(obj: dict[str, Any], rule: str, path: str, severity: Severity) -> None:
    report = lint(policy(spec=obj))
    found = [(f.path, f.severity) for f in only(report, rule)]
    assert (path, severity) in found, report.findings
    assert "policy/schema" not in rules(report), report.findings
    assert all(f.line is not None and f.hint for f in report.findings)


@pytest.mark.parametrize(
    "obj",
    [
        spec({"canary": {**CANARY["canary"], "onInconclusive": "hold"}}),
        spec({"abTest": {"duration": "30m", "promoteOnSuccess": True, "onInconclusive": "rollback"}}),
        spec({"canary": {"steps": [{"weight": 10, "bake": "30s"}, {"pause": {}}, {"weight": 50}]}}),
        spec({"canary": {"stepWeight": 10, "maxWeight": 50, "interval": "1m"}}),
        spec({"blueGreen": {}}),
        spec({"abTest": {"duration": "30m"}}),
        spec({"abTest": {"routing": "split", "splitPercent": 20, "duration": "30m"}}),
        spec(
            analysis=analysis(
                metric(builtin="latency", threshold={"max": 0.5}, compare={"latencyEdges": [0.1, 0.5]})
            )
        ),
        spec(
            analysis=analysis(
                metric(
                    query='sum(rate(x{ns="{{ namespace }}", r=~"a|(b)"}[{{ interval }}])) # ok ]',
                    threshold={"max": 1},
                )
            )
        ),
        spec(
            analysis=analysis(
                metric(builtin="errorRate", compare={}),
                metric(name="l", builtin="latency", compare={}, noData="pass"),
            )
        ),
        spec(webhooks=[{"name": "a", "type": "step", "url": "http://checks.tools.svc:8080/x"}]),
        spec(deadlines={"rollout": "5m"}),
    ],
)
def test_sound_variants_raise_nothing(obj: dict[str, Any]) -> None:
    report = lint(policy(spec=obj))
    assert report.findings == []


def test_explicit_null_is_dropped_by_the_api_server() -> None:
    obj = spec(analysis=analysis(metric(builtin="errorRate", compare={"alpha": None})))
    assert at(lint(policy(spec=obj)), "policy/null-value") == ["spec.analysis.metrics[0].compare.alpha"]


def test_policy_name_too_long_for_a_label() -> None:
    report = lint(policy(name="p" * 70, spec=spec()))
    assert at(report, "policy/name-too-long") == ["metadata.name"]
