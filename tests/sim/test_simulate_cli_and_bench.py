"""`rollout simulate` and `bench/decisions.py --quick`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rollout.cli.main import main
from rollout_lab.sim.policies import DEFAULT_POLICY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    doc = {"apiVersion": "knrollout.dev/v1alpha1", "kind": "RolloutPolicy", "metadata": {"name": "p"}}
    path.write_text(yaml.safe_dump({**doc, "spec": DEFAULT_POLICY}))
    return path


def test_simulate_json(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            str(policy_file),
            "--scenario",
            "errors-plus-5pp",
            "--rps",
            "200",
            "--runs",
            "5",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("runs", "rolled_back", "promoted", "median_decision_seconds", "mean_blast_radius"):
        assert key in out
    # caught at the 1% probe: its first whole window ends a minute in
    assert out["runs"] == 5 and out["rolled_back"] == 5 and out["median_decision_seconds"] == 60.0
    assert any(e["note"].startswith("RegressionDetected") for e in out["timeline"])


def test_simulate_text_shows_timeline_and_false_rollbacks(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["simulate", str(policy_file), "--scenario", "aa", "--rps", "5", "--runs", "3", "--seed", "2"])
        == 0
    )
    out = capsys.readouterr().out
    assert "StepAdvanced" in out and "false rollbacks: 0.00%" in out and "promoted 3" in out


def test_simulate_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"kind": "RolloutPolicy", "apiVersion": "knrollout.dev/v1alpha1", "spec": {"strategy": {}}}
        )
    )
    assert main(["simulate", str(bad), "--scenario", "aa"]) == 2
    assert "strategy" in capsys.readouterr().err
    blue = tmp_path / "bg.yaml"
    blue.write_text(yaml.safe_dump({"strategy": {"blueGreen": {}}}))
    assert main(["simulate", str(blue), "--scenario", "aa"]) == 2
    assert "blueGreen" in capsys.readouterr().err


def test_quick_benchmark_keeps_false_rollbacks_low() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "decisions.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    cells = json.loads(proc.stdout)
    keys = {
        "policy",
        "scenario",
        "rps",
        "runs",
        "rollback_rate",
        "rollback_rate_upper",
        "median_rollback_seconds",
        "mean_blast_radius",
        "median_promotion_seconds",
    }
    assert all(keys <= set(c) for c in cells)
    ours = {(c["scenario"], c["rps"]): c for c in cells if c["policy"] == "knative-rollout"}
    flagger = {(c["scenario"], c["rps"]): c for c in cells if c["policy"] == "flagger"}
    for rps in (1.0, 20.0, 200.0):
        aa = ours[("aa", rps)]
        assert aa["runs"] >= 300 and aa["rollback_rate_upper"] <= 0.05  # loose: the full run checks 1%
    assert ours[("errors-plus-5pp", 200.0)]["rollback_rate"] >= 0.9
    assert (
        ours[("errors-plus-5pp", 200.0)]["mean_blast_radius"]
        < flagger[("errors-plus-5pp", 200.0)]["mean_blast_radius"] / 5
    )
    assert ours[("latency-x1.2", 20.0)]["rollback_rate"] >= 0.8


def test_the_shipped_standard_canary_is_the_benchmarked_default_policy() -> None:
    from pathlib import Path

    from rollout_lab.sim.policies import default_policy, load_policy_file

    path = Path(__file__).resolve().parents[2] / "policies" / "standard-canary.yaml"
    spec, problems = load_policy_file(path)
    assert problems == []
    assert spec == default_policy()
