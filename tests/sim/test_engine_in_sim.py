"""Our engine (the real state machine and judges) driven by the simulator."""

from __future__ import annotations

import json
from typing import Any

from rollout.api.load import parse_rollout
from rollout.api.policy import BuiltinMetric
from rollout_lab.sim.counters import RunView
from rollout_lab.sim.drivers import PROMOTED, ROLLED_BACK, Driver
from rollout_lab.sim.engine_driver import EngineDriver
from rollout_lab.sim.policies import default_policy, engine_factory
from rollout_lab.sim.report import summarise
from rollout_lab.sim.runner import Baseline, simulate
from rollout_lab.sim.scenarios import SCENARIOS


def test_good_canary_walks_the_ladder_and_is_promoted() -> None:
    results = simulate(engine_factory(default_policy()), SCENARIOS["aa"], 200.0, 3, seed=7, trace_runs=1)
    assert [r.outcome for r in results] == [PROMOTED] * 3
    assert all(r.decision_seconds is not None and r.decision_seconds <= 360.0 for r in results)
    notes = [e.note for e in results[0].timeline]
    assert sum(n.startswith("StepAdvanced") for n in notes) == 5  # the probe, then 10% to 40%
    assert any(n.startswith("analysis: error-rate") for n in notes)
    weights = [e.weight for e in results[0].timeline]
    shares = [w for w in weights if 0 < w < 100]
    assert shares[0] == 1 and max(shares) == 50


def test_five_points_more_errors_are_rolled_back_at_the_probe() -> None:
    results = simulate(engine_factory(default_policy()), SCENARIOS["errors-plus-5pp"], 200.0, 20, seed=8)
    s = summarise("ours", "errors-plus-5pp", 200.0, True, results)
    assert s.rolled_back == 20 and s.median_rollback_seconds == 60.0
    assert 2.0 < s.mean_blast_radius < 20.0  # about 60 s x 2 canary rps x 5%, not 30 s x 20 at 10%
    assert s.mean_canary_requests < 300


class RestartingDriver(EngineDriver):
    """Kills the controller after every reconcile: only the Rollout (as stored in the cluster) survives."""

    def tick(self, now: float, view: RunView) -> None:
        super().tick(now, view)
        stored = json.loads(json.dumps(self.rollout.to_wire()))
        rollout, problems = parse_rollout(stored)
        assert rollout is not None, problems
        self.rollout = rollout


def test_a_controller_restarted_at_every_tick_decides_exactly_the_same() -> None:
    policy = default_policy()

    def baselines(b: Baseline) -> dict[str, Any]:
        return {
            m.name: b.requests if m.builtin is BuiltinMetric.ERROR_RATE else b.latency
            for m in policy.analysis.metrics
        }

    def plain(run: int, b: Baseline) -> Driver:
        return EngineDriver(policy, baselines(b), trace=True)

    def restarting(run: int, b: Baseline) -> Driver:
        return RestartingDriver(policy, baselines(b), trace=True)

    outcomes: set[str] = set()
    for scenario in ("latency-x1.2", "aa"):
        a = simulate(plain, SCENARIOS[scenario], 20.0, 4, seed=9, trace_runs=4)
        b = simulate(restarting, SCENARIOS[scenario], 20.0, 4, seed=9, trace_runs=4)
        assert [(r.outcome, r.decision_seconds, r.blast_radius) for r in a] == [
            (r.outcome, r.decision_seconds, r.blast_radius) for r in b
        ]
        assert [r.timeline for r in a] == [r.timeline for r in b]
        outcomes.update(r.outcome for r in a)
    assert outcomes == {ROLLED_BACK, PROMOTED}  # both paths were exercised


def test_healthy_canaries_with_cold_starts_are_promoted() -> None:
    """The candidate's new pods take 20 s to start; requests that meet a share without its pods (5% of them)
    wait 1.5 s more in Knative's activator. The steps wait for the pods, which are pre-warmed."""
    results = simulate(
        engine_factory(default_policy()), SCENARIOS["cold-start"], 50.0, 60, seed=11, trace_runs=1
    )
    s = summarise("ours", "cold-start", 50.0, False, results)
    assert s.rolled_back <= 2, s  # A/A-like: the cold windows are not compared
    notes = [e.note for e in results[0].timeline]
    assert sum(n.startswith("StepAdvanced") for n in notes) == 5


def test_pre_warmed_shares_meet_no_cold_start() -> None:
    """With strategy.prewarm (the default) each share waits for its pods before it is given, so the cold
    requests (the harm counted in this scenario) are gone; without it every raise meets them."""
    warm_spec = default_policy()
    cold_spec = warm_spec.model_copy(
        update={"strategy": warm_spec.strategy.model_copy(update={"prewarm": False})}
    )
    blast: dict[str, float] = {}
    for name, spec in (("warm", warm_spec), ("cold", cold_spec)):
        results = simulate(engine_factory(spec), SCENARIOS["cold-start"], 50.0, 40, seed=3)
        s = summarise(name, "cold-start", 50.0, False, results)
        assert s.rolled_back <= 1, s
        blast[name] = s.mean_blast_radius
    assert blast["cold"] > 20 and blast["warm"] < 0.1 * blast["cold"], blast
