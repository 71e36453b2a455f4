"""Lint's structural checks of Knative objects agree with the real Knative CRD schemas: the field lists in
rollout.lint.knative_rules are the schema's, and on sample documents lint reports exactly the fields a
structural schema prunes, and the type errors the schema rejects."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.lint import knative_rules
from tests.lint.helpers import configuration, edited, lint, route, service
from tests.lint.knative_crds import needs_knative_crds, pruned_fields, schema, schema_errors

pytestmark = needs_knative_crds


def properties(kind: str, *path: str) -> set[str]:
    node = schema(kind)
    for part in path:
        node = node["properties"][part] if part != "[]" else node["items"]
    return set(node["properties"])


def test_field_lists_are_the_crd_schema_fields() -> None:
    for kind, fields in knative_rules.SPEC_FIELDS.items():
        assert set(fields) == properties(kind, "spec"), kind
    for kind in ("Service", "Configuration"):
        assert set(knative_rules.TEMPLATE_FIELDS) == properties(kind, "spec", "template")
        assert set(knative_rules.POD_SPEC_FIELDS) == properties(kind, "spec", "template", "spec")
        assert set(knative_rules.CONTAINER_FIELDS) == properties(
            kind, "spec", "template", "spec", "containers", "[]"
        )
    from rollout.knative.traffic import ENTRY_FIELDS

    assert set(ENTRY_FIELDS) == properties("Route", "spec", "traffic", "[]")


UNKNOWN_FIELD_SAMPLES: list[dict[str, Any]] = [
    service(policy_name=None),
    edited(service(policy_name=None), ("spec", "url"), "http://x"),
    edited(service(policy_name=None), ("spec", "runLatest"), {"configuration": {}}),
    edited(service(policy_name=None), ("spec", "template", "containers"), [{"image": "x"}]),
    edited(service(policy_name=None), ("spec", "template", "spec", "hostname"), "x"),
    edited(
        service(policy_name=None), ("spec", "template", "spec", "containers", 0, "lifecycle"), {"preStop": {}}
    ),
    edited(service(policy_name=None), ("spec", "template", "spec", "containers", 0, "stdin"), True),
    service(policy_name=None, traffic=[{"latestRevision": True, "percent": 100, "path": "/v2"}]),
    route("front", [{"configurationName": "shop", "percent": 100, "domain": "shop.example.com"}]),
    edited(route(), ("spec", "template"), {"spec": {}}),
    edited(configuration(), ("spec", "traffic"), []),
    edited(configuration(), ("spec", "template", "spec", "serviceAccount"), "x"),
]


@pytest.mark.parametrize("obj", UNKNOWN_FIELD_SAMPLES)
def test_lint_reports_exactly_the_fields_the_schema_prunes(obj: dict[str, Any]) -> None:
    linted = sorted(f.path for f in lint(obj).findings if f.rule == "knative/unknown-field")
    assert linted == pruned_fields(obj)


TYPE_SAMPLES: list[dict[str, Any]] = [
    service(policy_name=None, traffic=[{"latestRevision": True, "percent": "100"}]),
    service(policy_name=None, traffic=[{"latestRevision": "yes", "percent": 100}]),
    route("front", [{"configurationName": 7, "percent": 100}]),
    edited(route(), ("spec", "traffic"), {"configurationName": "shop", "percent": 100}),
]


@pytest.mark.parametrize("obj", TYPE_SAMPLES)
def test_lint_reports_the_type_errors_the_schema_rejects(obj: dict[str, Any]) -> None:
    linted = sorted(f.path for f in lint(obj).findings if f.rule == "knative/schema-type")
    assert linted == schema_errors(obj)
    assert linted
