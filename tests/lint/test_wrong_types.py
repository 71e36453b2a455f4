"""Wrong types everywhere: every value of sound manifests replaced by values of other types. Lint must
report problems, never crash (no `lint/internal-error`), and still give each finding a line."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.lint.findings import Severity
from tests.lint.helpers import lint, policy, route, service

ROOT = Path(__file__).resolve().parents[2]
REPLACEMENTS: list[Any] = [None, 7, -1.5, "text", True, [], {}, [1, {"a": None}], {"x": [None]}]


def samples() -> list[dict[str, Any]]:
    shipped = [
        doc
        for path in sorted((ROOT / "policies").glob("*.yaml")) + sorted((ROOT / "examples").rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    busy_service = service(
        traffic=[
            {"revisionName": "hello-00001", "percent": 90, "tag": "stable"},
            {"latestRevision": True, "percent": 10, "tag": "canary"},
        ],
        template_annotations={
            "autoscaling.knative.dev/min-scale": "1",
            "autoscaling.knative.dev/window": "60s",
        },
        annotations={"serving.knative.dev/rollout-duration": "60s"},
    )
    custom = policy(
        "custom",
        spec={
            "strategy": {"abTest": {"routing": "split", "splitPercent": 20, "duration": "30m"}},
            "analysis": {
                "metrics": [{"name": "q", "query": 'sum(x{a="{{ namespace }}"})', "threshold": {"max": 1}}]
            },
            "webhooks": [{"name": "w", "type": "step", "url": "http://hooks.svc/x"}],
        },
    )
    return [*shipped, busy_service, custom, route("front", policy_name="custom")]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    target: Any = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = copy.deepcopy(value)
    return out


@pytest.mark.parametrize("index", range(len(samples())))
def test_every_value_of_every_type_never_crashes_lint(index: int) -> None:
    sample = samples()[index]
    checked = 0
    for path in list(paths(sample)):
        for value in REPLACEMENTS:
            report = lint(
                replaced(sample, path, value), policy("std"), policy("hello-canary"), policy("shop-canary")
            )
            internal = [f for f in report.findings if f.rule == "lint/internal-error"]
            assert internal == [], (path, value, internal)
            assert all(f.line is not None for f in report.findings if f.severity == Severity.ERROR), (
                path,
                value,
            )
            checked += 1
    assert checked > 20
