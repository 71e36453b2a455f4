"""Building manifests and linting them in tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollout.lint.findings import Finding, Severity
from rollout.lint.linter import LintReport, lint_texts

POLICY_LABEL = "knrollout.dev/policy"


def policy(name: str = "std", spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": name, **meta},
        "spec": spec
        if spec is not None
        else {"strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 50}]}}},
    }


def service(
    name: str = "hello",
    *,
    policy_name: str | None = "std",
    traffic: list[Any] | None = None,
    template_annotations: dict[str, Any] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    labels = {POLICY_LABEL: policy_name} if policy_name else {}
    template: dict[str, Any] = {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest"}]}}
    if template_annotations is not None:
        template["metadata"] = {"annotations": template_annotations}
    spec: dict[str, Any] = {"template": template}
    if traffic is not None:
        spec["traffic"] = traffic
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels, **meta},
        "spec": spec,
    }


def route(
    name: str = "front", traffic: list[Any] | None = None, policy_name: str | None = None
) -> dict[str, Any]:
    labels = {POLICY_LABEL: policy_name} if policy_name else {}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Route",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "traffic": traffic if traffic is not None else [{"configurationName": "shop", "percent": 100}]
        },
    }


def configuration(name: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Configuration",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest"}]}}},
    }


def dump(*objects: Any) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def lint(*objects: Any, name: str = "test.yaml") -> LintReport:
    return lint_texts([(name, dump(*objects))])


def lint_text(text: str, name: str = "test.yaml") -> LintReport:
    return lint_texts([(name, text)])


def rules(report: LintReport, severity: Severity | None = None) -> set[str]:
    return {f.rule for f in report.findings if severity is None or f.severity == severity}


def only(report: LintReport, rule: str) -> list[Finding]:
    return [f for f in report.findings if f.rule == rule]


def at(report: LintReport, rule: str) -> list[str]:
    """Paths of the findings of one rule."""
    return [f.path for f in only(report, rule)]


def edited(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of obj with the value at path replaced (created if missing)."""
    out = copy.deepcopy(obj)
    target = out
    for part in path[:-1]:
        target = target.setdefault(part, {}) if isinstance(target, dict) else target[part]
    target[path[-1]] = value
    return out
