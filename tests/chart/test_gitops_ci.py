"""The CI recipe of examples/gitops/README.md, run on the example: `rollout lint` passes the whole GitOps
directory, and `rollout simulate` catches a regression with the example policy and promotes a good canary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollout.cli.main import main
from tests.chart.gitops import GITOPS


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_lint_passes_the_gitops_directory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "lint", str(GITOPS), "--output", "json")
    report: dict[str, Any] = json.loads(out)
    assert code == 0, report["findings"]
    assert report["summary"]["errors"] == 0 and report["summary"]["objects"] >= 2


@pytest.mark.parametrize(("scenario", "outcome"), [("errors-plus-5pp", "rolled_back"), ("aa", "promoted")])
def test_simulation_of_the_example_policy(
    capsys: pytest.CaptureFixture[str], scenario: str, outcome: str
) -> None:
    policy = GITOPS / "app" / "policy.yaml"
    code, out = _run(
        capsys, "simulate", str(policy), "--scenario", scenario, "--runs", "5", "--seed", "1", "--json"
    )
    result: dict[str, Any] = json.loads(out)
    assert code == 0
    assert result["runs"] == 5 and result[outcome] == 5, {k: result[k] for k in ("rolled_back", "promoted")}
    assert {"median_decision_seconds", "mean_blast_radius"} <= result.keys()
