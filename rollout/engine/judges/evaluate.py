"""One analysis tick for a whole policy: every metric judged on the same window, as the `AnalysisUpdate` the
state machine (`rollout.engine.machine.decide`) takes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rollout.api.policy import RolloutPolicySpec
from rollout.engine.inputs import AnalysisUpdate
from rollout.engine.judges.metric import Judgement, advise, judge_metric, rules_for
from rollout.engine.observations import Measurement, MeasurementError, MetricObservation


def evaluate(
    policy: RolloutPolicySpec,
    judge_state: Mapping[str, Any],
    observations: Mapping[str, MetricObservation],
    step: int,
    window: tuple[datetime, datetime],
    baselines: Mapping[str, Measurement] | None = None,
    evaluated_at: datetime | None = None,
) -> tuple[AnalysisUpdate, tuple[Judgement, ...]]:
    """Judge every metric of `policy` on one window. `judge_state` is `RolloutStatus.judgeState` (metric name
    -> that metric's state); `step` the index of the step whose traffic the window measured; `baselines`
    stable's measurement per metric over a reference window before the rollout (first tick only). A metric
    missing from `observations` counts as a measurement error (never as a failed check). The update's
    `window_end` (the machine's `lastAnalysisAt`, which paces the ticks) is `evaluated_at` when given: with
    Prometheus lagging a scrape behind, the data window ends before the tick that read it."""
    start, end = window
    judgements: list[Judgement] = []
    new_state: dict[str, Any] = {}
    for metric in policy.analysis.metrics:
        observation = observations.get(metric.name) or MetricObservation(
            metric=metric.name,
            start=start,
            end=end,
            canary=MeasurementError("not measured"),
            stable=MeasurementError("not measured"),
        )
        j = judge_metric(
            rules_for(policy.analysis, metric),
            judge_state.get(metric.name),
            observation,
            step,
            (baselines or {}).get(metric.name),
        )
        judgements.append(j)
        new_state[metric.name] = j.state
    advice = advise(judgements)
    failed = [j for j in judgements if j.rollback]
    summary = "; ".join(f"{j.result.name}: {j.result.message}" for j in failed)
    return (
        AnalysisUpdate(
            window_end=evaluated_at or end,
            results=tuple(j.result for j in judgements),
            judge_state=new_state,
            failed=advice.rollback,
            summary=summary,
            data_window=(start, end),
        ),
        tuple(judgements),
    )
