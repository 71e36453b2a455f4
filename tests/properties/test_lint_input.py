"""`rollout lint` on anything a user can hand it: any text, any YAML shape under any of our kinds, any
policy document; it reports findings, never fails inside (lint/internal-error is a bug), and it reports an
error exactly when the policy model refuses the document."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from rollout.api.load import parse_policy
from rollout.lint.findings import Severity
from rollout.lint.linter import LintReport, lint_texts
from tests.properties.test_models import document, spec

KINDS = (
    ("knrollout.dev/v1alpha1", "RolloutPolicy"),
    ("knrollout.dev/v1alpha1", "ClusterMetricSource"),
    ("serving.knative.dev/v1", "Service"),
    ("serving.knative.dev/v1", "Route"),
    ("serving.knative.dev/v1", "Configuration"),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def lint(text: str) -> LintReport:
    report = lint_texts([("f.yaml", text)])
    internal = [f for f in report.findings if f.rule == "lint/internal-error"]
    assert not internal, internal
    return report


@given(st.text(max_size=200))
@example("a: &x [*x]")
@example("- !!python/object:os.system ls")
@example("\ufeffkind: Service\n\x00")
def test_any_text_gives_findings_not_a_crash(text: str) -> None:
    lint(text)


@given(
    st.sampled_from(KINDS), st.dictionaries(st.sampled_from(["metadata", "spec", "status", "x"]), json_values)
)
def test_any_shape_under_our_kinds_gives_findings_not_a_crash(
    kind: tuple[str, str], body: dict[str, Any]
) -> None:
    lint(yaml.safe_dump({"apiVersion": kind[0], "kind": kind[1], **body}))


@given(spec)
def test_lint_errs_exactly_when_the_model_refuses_the_policy(body: dict[str, Any]) -> None:
    doc = document(body)
    _, problems = parse_policy(copy.deepcopy(doc))
    report = lint(yaml.safe_dump(doc))
    schema_errors = [f for f in report.findings if f.severity == Severity.ERROR and f.rule == "policy/schema"]
    assert bool(schema_errors) == bool(problems), (problems, report.findings)
