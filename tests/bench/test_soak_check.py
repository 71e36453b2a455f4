"""The soak's invariant checker catches each kind of violation it promises (bench/soak_check.py), and is
silent on a correct log."""

from __future__ import annotations

import copy
from typing import Any

from bench.soak_check import Expectation, Served, Version, check_served, check_versions

POLICY = {
    "strategy": {"canary": {"steps": [{"weight": 20, "bake": "6s"}, {"weight": 50, "bake": "6s"}]}},
    "analysis": {"interval": "2s"},
}
GOOD = {"hello-00002.1": Expectation("good", frozenset({"Succeeded"}))}


def metric(measured: str, data: str | None = None, verdict: str = "Pass", **extra: Any) -> dict[str, Any]:
    return {
        "name": "error-rate",
        "verdict": verdict,
        "measuredAt": measured,
        "lastDataAt": data or measured,
        **extra,
    }


def rollout(
    step: int, phase: str, reason: str, started: str | None, analysis: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "metadata": {"name": "hello-00002.1"},
        "spec": {
            "target": {"name": "hello"},
            "stableRevision": "hello-00001",
            "candidateRevision": "hello-00002",
            "attempt": 1,
            "policy": {"spec": POLICY},
        },
        "status": {
            "phase": phase,
            "reason": reason,
            "currentStep": step,
            "stepStartedAt": started,
            "analysis": analysis,
        },
    }


def good_log() -> list[dict[str, Any]]:
    return [
        rollout(0, "Pending", "", None, []),
        rollout(0, "Progressing", "CandidateReady", "2026-12-06T10:00:00.000000Z", []),
        rollout(
            0,
            "Progressing",
            "CandidateReady",
            "2026-12-06T10:00:00.000000Z",
            [metric("2026-12-06T10:00:06Z")],
        ),
        rollout(1, "Progressing", "StepAdvanced", None, [metric("2026-12-06T10:00:06Z")]),
        rollout(
            1, "Progressing", "StepAdvanced", "2026-12-06T10:00:07.000000Z", [metric("2026-12-06T10:00:07Z")]
        ),
        rollout(
            1, "Promoting", "AnalysisPassed", "2026-12-06T10:00:07.000000Z", [metric("2026-12-06T10:00:13Z")]
        ),
        rollout(1, "Succeeded", "Promoted", "2026-12-06T10:00:07.000000Z", [metric("2026-12-06T10:00:13Z")]),
    ]


def versions(objs: list[dict[str, Any]]) -> list[Version]:
    return [Version(i, o) for i, o in enumerate(objs)]


def kinds(objs: list[dict[str, Any]], expected: dict[str, Expectation] = GOOD) -> list[str]:
    return sorted({v.split(":")[0] for v in check_versions(versions(objs), expected).violations})


def test_a_correct_rollout_has_no_violation() -> None:
    assert kinds(good_log()) == []
    served = [Served("hello", {"hello-00001": 100}), Served("hello", {"hello-00001": 80, "hello-00002": 20})]
    assert check_served(served, versions(good_log()), {"hello": "hello-00001"}).violations == []


def test_a_split_outside_the_plan() -> None:
    served = [Served("hello", {"hello-00001": 70, "hello-00002": 30})]
    report = check_served(served, versions(good_log()), {"hello": "hello-00001"})
    assert [v.split(":")[0] for v in report.violations] == ["split-outside-plan"]


def test_advancing_on_an_error_a_missing_window_or_a_stale_one() -> None:
    for bad in (
        metric("2026-12-06T10:00:06Z", verdict="Error"),
        metric("2026-12-06T10:00:06Z", data="2026-12-06T10:00:04Z"),  # the last window had no data
        metric("2026-12-06T10:00:06Z", erroredAt="2026-12-06T10:00:06Z"),
        metric("2026-12-06T10:00:02Z"),  # before the bake's last interval
    ):
        log = good_log()
        log[3]["status"]["analysis"] = [bad]
        assert kinds(log) == ["unbacked-advance"], bad


def test_promoting_without_passing_evidence() -> None:
    log = good_log()
    log[5]["status"]["analysis"] = [metric("2026-12-06T10:00:13Z", verdict="Inconclusive")]
    assert kinds(log) == ["unbacked-advance"]


def test_a_wrong_verdict_a_missing_rollout_and_duplicates() -> None:
    log = good_log()
    log[-1]["status"]["phase"] = "RolledBack"
    assert kinds(log) == ["wrong-verdict"]
    assert kinds(good_log(), {**GOOD, "hello-00003.1": GOOD["hello-00002.1"]}) == ["missing-rollout"]
    second = copy.deepcopy(good_log()[1])
    second["metadata"]["name"] = "hello-00002.2"
    second["spec"]["attempt"] = 2
    log = good_log()
    log.insert(2, second)
    expected = {**GOOD, "hello-00002.2": GOOD["hello-00002.1"]}
    assert kinds(log, expected) == ["duplicate-rollout", "wrong-verdict"]
