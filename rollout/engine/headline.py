"""The first line of a rollout's story, for people: what is happening or what happened, in plain words, the
numbers next. `rollout status`, `rollout list` and the notifications all lead with it."""

from __future__ import annotations

from rollout.api.rollout import MetricResult, Rollout
from rollout.engine.messages import PAUSED_FOR
from rollout.engine.steps import engine_steps, step_at
from rollout.engine.units import in_unit, unit_of

_ENDED = {
    "Succeeded": "Promoted",
    "RolledBack": "Rolled back",
    "Failed": "Failed",
    "Aborted": "Aborted",
    "Superseded": "Superseded",
    "Undone": "Undone",
}


def _evidence(rollout: Rollout, r: MetricResult) -> str:
    unit = unit_of(rollout.spec.policy.spec, r.name)
    text = f"canary {r.name} {in_unit(r.value, unit)} vs stable {in_unit(r.stable_value, unit)}"
    if r.threshold_max is not None:
        text += f" (max {in_unit(r.threshold_max, unit)})"
    elif r.threshold_min is not None:
        text += f" (min {in_unit(r.threshold_min, unit)})"
    return text


def headline(rollout: Rollout) -> str:
    """The first line: what is happening or what happened, in plain words; the numbers next."""
    status = rollout.status
    phase = status.phase.value
    failed = [r for r in status.analysis if r.verdict.value == "Fail" and not r.dry_run]
    if phase in _ENDED:
        if status.reason == "RegressionDetected" and failed:
            return f"{_ENDED[phase]}: " + "; ".join(_evidence(rollout, r) for r in failed)
        return f"{_ENDED[phase]}: {status.outcome or status.reason}"
    step = status.step or f"{status.current_step + 1}/{status.step_count}"
    if phase == "Pending" and status.short_since is not None:
        return (
            f"Waiting for revision {rollout.spec.candidate_revision}'s pods: "
            f"{status.candidate_pods} of {status.candidate_wanted_pods} ready"
        )
    if phase == "Pending":
        return f"Waiting for revision {rollout.spec.candidate_revision} to become Ready"
    if phase == "Paused":
        why = PAUSED_FOR[status.paused_for] if status.paused_for else "paused"
        return f"Paused at step {step} with the candidate at {status.canary_weight}%, {why}"
    if phase == "Promoting":
        return f"Promoting {rollout.spec.candidate_revision} to 100%"
    steps = engine_steps(rollout.spec.policy.spec)
    probing = step_at(steps, status.current_step).probe
    return f"Step {step}: {'probe, ' if probing else ''}{status.canary_weight}% to the candidate"
