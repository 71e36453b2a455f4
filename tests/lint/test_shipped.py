"""Everything in policies/ and examples/ passes `rollout lint`, validates against the real Knative CRD
schemas (Knative objects) or our generated CRD schema (RolloutPolicies), and documents itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rollout.api.crd import render_crds
from rollout.cli.main import main
from rollout.lint.discover import discover
from rollout.lint.linter import lint_files
from tests.lint.knative_crds import FILES, needs_knative_crds, pruned_fields, schema_errors

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "policies").glob("*.yaml"))
EXAMPLE_FILES = sorted(p for p in (ROOT / "examples").rglob("*.yaml") if "gitops" not in p.parts)


def objects(paths: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, doc) for p in paths for doc in yaml.safe_load_all(p.read_text()) if doc]


def test_ready_made_policies_exist() -> None:
    names = {p.stem for p in POLICIES}
    assert {"standard-canary", "fast-canary", "conservative-canary", "blue-green", "ab-test"} <= names


def test_policies_and_examples_lint_clean_even_in_strict_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--strict", str(ROOT / "policies"), str(ROOT / "examples")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("0 errors, 0 warnings")


@pytest.mark.parametrize(
    "directory",
    ["examples/hello", "examples/route-configuration", "examples/quickstart", "examples/notifications"],
)
def test_each_example_directory_lints_clean_on_its_own(directory: str) -> None:
    report = lint_files(discover([str(ROOT / directory)]).files)
    assert report.findings == [] and report.objects >= 2
    assert (ROOT / directory / "README.md").is_file()


def test_each_policy_has_a_header_saying_when_to_use_it_and_what_it_does() -> None:
    for path in POLICIES:
        header = path.read_text().split("apiVersion:")[0]
        assert header.count("\n#") >= 5, path
        assert "When to use it" in header and "What it does" in header, path
        [doc] = yaml.safe_load_all(path.read_text())
        assert doc["metadata"]["name"] == path.stem, path


def test_policies_validate_against_our_generated_crd_schema() -> None:
    crd = yaml.safe_load(render_crds()["rolloutpolicies.knrollout.dev.yaml"])
    [version] = crd["spec"]["versions"]
    validator = jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"])
    found = objects(POLICIES + EXAMPLE_FILES)
    policies = [(p, d) for p, d in found if d["kind"] == "RolloutPolicy"]
    assert len(policies) == len(POLICIES) + 4  # hello, route-configuration, quickstart, notifications
    for path, doc in policies:
        assert [e.message for e in validator.iter_errors(doc)] == [], path


@needs_knative_crds
def test_knative_examples_validate_against_the_real_crd_schemas() -> None:
    knative = [
        (p, d) for p, d in objects(EXAMPLE_FILES) if d["apiVersion"].startswith("serving.knative.dev/")
    ]
    assert {d["kind"] for _, d in knative} == set(FILES)  # Service, Route and Configuration are all shown
    for path, doc in knative:
        assert schema_errors(doc) == [], path
        assert pruned_fields(doc) == [], path
