"""Policies for the simulator: reading a policy file, the default policy the benchmark uses, and the driver
factories for our engine and the two baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rollout.api.load import FieldProblem, parse_policy, parse_policy_spec
from rollout.api.policy import BuiltinMetric, RolloutPolicySpec
from rollout.api.strategy import AbRouting
from rollout_lab.sim.drivers import Driver, FlaggerDriver, KnativeDurationDriver
from rollout_lab.sim.engine_driver import EngineDriver
from rollout_lab.sim.runner import Baseline, DriverFactory

# The default policy the benchmark measures, identical to policies/standard-canary.yaml (a test checks it):
# a one-minute probe at 1%, then Flagger's exposure ladder (10% steps to 50%, one minute each), evaluated
# every 30 s, false-rollback bound 1% split over the two comparisons, latency compared with no tolerance, and
# a 5% error-rate guardrail (which also gives the error side an absolute gate, so good canaries may end steps
# early).
DEFAULT_POLICY: dict[str, Any] = {
    "strategy": {"canary": {"stepWeight": 10, "maxWeight": 50, "interval": "1m", "probe": {"weight": 1}}},
    "analysis": {
        "interval": "30s",
        "alpha": 0.01,
        "noData": "wait",
        "metrics": [
            {
                "name": "error-rate",
                "builtin": "errorRate",
                "compare": {"earlyStopMargin": 0.5},
                "threshold": {"max": 0.05},
            },
            {
                "name": "latency",
                "builtin": "latency",
                "compare": {"maxRelativeDegradation": 0.0, "earlyStopMargin": 0.5},
            },
        ],
    },
}


def default_policy() -> RolloutPolicySpec:
    spec, problems = parse_policy_spec(DEFAULT_POLICY)
    assert spec is not None, problems
    return spec


def load_policy_file(path: Path) -> tuple[RolloutPolicySpec | None, list[FieldProblem]]:
    """A RolloutPolicy document (or a bare spec) from a YAML file; the first RolloutPolicy if several."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        return None, [FieldProblem(str(path), f"cannot read the policy: {exc}")]
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") == "RolloutPolicy":
            policy, problems = parse_policy(doc)
            return (policy.spec if policy is not None else None), problems
    if len(documents) == 1 and isinstance(documents[0], dict) and "strategy" in documents[0]:
        return parse_policy_spec(documents[0])
    return None, [FieldProblem(str(path), "no RolloutPolicy document found", "kind: RolloutPolicy")]


def simulation_problems(spec: RolloutPolicySpec) -> list[str]:
    """Why this policy cannot be simulated (the simulator sends live traffic by weight only)."""
    problems = []
    strategy = spec.strategy
    if strategy.blue_green is not None:
        problems.append(
            "blueGreen sends no live traffic to the candidate; the simulator models weighted traffic"
        )
    if strategy.ab_test is not None and strategy.ab_test.routing != AbRouting.SPLIT:
        problems.append("abTest with header routing sends no weighted traffic; use routing: split")
    return problems


def engine_factory(spec: RolloutPolicySpec, trace_runs: int = 1) -> DriverFactory:
    def make(run: int, baseline: Baseline) -> Driver:
        baselines = {
            m.name: baseline.requests if m.builtin is BuiltinMetric.ERROR_RATE else baseline.latency
            for m in spec.analysis.metrics
            if m.builtin is not None
        }
        return EngineDriver(spec, baselines, trace=run < trace_runs)

    return make


def flagger_factory(interval: float = 60.0, threshold: int = 5) -> DriverFactory:
    """Flagger's canary analysis with `interval` (seconds; also its metrics' range) and `threshold`."""

    def make(run: int, baseline: Baseline) -> Driver:
        return FlaggerDriver(interval=interval, threshold=threshold)

    return make


def knative_factory(duration: float = 300.0) -> DriverFactory:
    def make(run: int, baseline: Baseline) -> Driver:
        return KnativeDurationDriver(duration=duration)

    return make
