"""The traffic side of a decision: the plan for the rollout's phase and step, whether Knative serves it,
the weights it gives, when the step's traffic began to be served (the bake's start), and how long a finished
rollout's candidate stays parked under `canary`. Pure, like `machine`, which calls it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rollout.api.rollout import Phase, Rollout, RolloutStatus
from rollout.engine.inputs import Inputs
from rollout.engine.observations import MISSING_REASON
from rollout.engine.plans import TrafficPlan, pinned, plan_applied, plan_for
from rollout.engine.steps import EngineStep, step_at
from rollout.engine.transitions import OPTED_OUT_REASON

# Phases whose candidate may stay parked at 0% under `canary` for a while (deadlines.keepFailedCandidate).
_PARKING = (Phase.ROLLED_BACK, Phase.FAILED, Phase.ABORTED)


def kept_until(rollout: Rollout, status: RolloutStatus) -> datetime | None:
    """Until when a finished rollout's candidate stays parked under `canary`; None when it does not."""
    if status.phase not in _PARKING or status.reason == OPTED_OUT_REASON or status.finished_at is None:
        return None
    keep = rollout.spec.policy.spec.deadlines.keep_failed_candidate
    return status.finished_at + timedelta(seconds=keep)


def planned(
    rollout: Rollout,
    status: RolloutStatus,
    steps: list[EngineStep],
    candidate_ready: bool,
    now: datetime,
    candidate_exists: bool = True,
) -> TrafficPlan:
    spec = rollout.spec
    if status.phase == Phase.UNDONE:  # the undo holds until a new revision's rollout takes over
        return pinned(status.undone_to or spec.stable_revision)
    until = kept_until(rollout, status)
    park = status.reason != OPTED_OUT_REASON and (until is None or now < until)
    if status.phase == Phase.PENDING:  # a revision that does not exist yet cannot be referenced
        park = park and candidate_exists
    return plan_for(
        spec.policy.spec,
        steps,
        status.phase,
        status.current_step,
        spec.stable_revision,
        spec.candidate_revision,
        candidate_ready,
        park_candidate=park,
    )


def with_traffic(
    rollout: Rollout, status: RolloutStatus, steps: list[EngineStep], inp: Inputs
) -> tuple[RolloutStatus, TrafficPlan]:
    exists = inp.candidate.reason != MISSING_REASON
    plan = planned(rollout, status, steps, inp.candidate.ready is True, inp.now, exists)
    applied = plan_applied(plan, inp.traffic)
    percents = plan.percents()
    updates: dict[str, Any] = {
        "traffic": list(plan.entries),
        "traffic_applied": applied,
        "canary_weight": percents.get(rollout.spec.candidate_revision, 0),
        "stable_weight": percents.get(rollout.spec.stable_revision, 0)
        if rollout.spec.stable_revision != rollout.spec.candidate_revision
        else 0,
    }
    step = step_at(steps, status.current_step)
    if (
        applied
        and status.phase in (Phase.PROGRESSING, Phase.PAUSED)
        and not step.is_gate
        and status.step_started_at is None
        and status.short_since is None  # the clock starts once the candidate has its pods
    ):
        updates["step_started_at"] = served_since(rollout, status, inp)
    return status.model_copy(update=updates), plan


def served_since(rollout: Rollout, status: RolloutStatus, inp: Inputs) -> datetime:
    """When the current step's traffic began to be served: when the split was first seen served, if that
    can only be this step's traffic — the recorded status was already waiting for Knative on this very step
    (so the split was seen after the step's traffic was decided and written) — else `now`. A controller
    that falls behind then does not stretch each bake by the time it took to notice the split."""
    since = inp.traffic.since if inp.traffic is not None else None
    before = rollout.status
    if (
        since is None
        or since > inp.now
        or before.traffic_applied
        or before.step_started_at is not None
        or before.short_since is not None  # served earlier, but its pods are ready only now
        or before.current_step != status.current_step
        or before.phase not in (Phase.PROGRESSING, Phase.PAUSED)
    ):
        return inp.now
    return since
