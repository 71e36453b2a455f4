"""The controller's Evaluator: the engine's judges (rollout.engine.judges.evaluate) applied to one rollout's
observations of one window, continuing from the judge state its status carries."""

from __future__ import annotations

from collections.abc import Mapping

from rollout.api.rollout import Rollout
from rollout.controller.schedule import Tick
from rollout.engine.inputs import AnalysisUpdate
from rollout.engine.judges.evaluate import evaluate
from rollout.engine.observations import MetricObservation


def evaluate_rollout(
    rollout: Rollout, observations: Mapping[str, MetricObservation], tick: Tick
) -> AnalysisUpdate:
    update, _ = evaluate(
        rollout.spec.policy.spec,
        rollout.status.judge_state,
        observations,
        rollout.status.current_step,
        (tick.start, tick.end),
    )
    return update
