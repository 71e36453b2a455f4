"""What a decision says in words: the Event of a transition, the one-sentence outcome of a finished rollout,
the status message and the conditions. Pure; plain words first, numbers next."""

from __future__ import annotations

from datetime import datetime

from rollout.api.common import ConditionStatus, format_time
from rollout.api.durations import format_duration
from rollout.api.policy import RolloutPolicySpec, WebhookType
from rollout.api.rollout import TERMINAL_PHASES, MetricResult, PausedFor, Phase, RolloutStatus
from rollout.engine.conditions import set_condition
from rollout.engine.inputs import Inputs
from rollout.engine.stepcheck import NOT_ENOUGH_TRAFFIC, StepCheck
from rollout.engine.steps import EngineStep, step_at
from rollout.engine.transitions import Event, Row
from rollout.engine.units import in_unit, unit_of
from rollout.engine.webhooks import key_kind

HOLD_HINT = "`rollout promote` promotes it, `rollout abort` rolls it back"
# The Progressing condition's message while Paused, by status.pausedFor.
PAUSED_FOR = {
    PausedFor.GATE: "waiting at a manual gate; `rollout resume` opens it",
    PausedFor.REQUEST: "paused; `rollout resume` continues",
    PausedFor.DEADLINE: "paused past its deadline; `rollout resume` continues, `rollout abort` rolls it back",
    PausedFor.INCONCLUSIVE: f"held on inconclusive evidence; {HOLD_HINT}",
}


def metric_summary(r: MetricResult, unit: str = "") -> str:
    text = f"{r.name} {r.verdict.value}"
    if r.value is not None or r.stable_value is not None:
        text += f" (canary {in_unit(r.value, unit)} vs stable {in_unit(r.stable_value, unit)}"
        if r.threshold_max is not None:
            text += f", max {in_unit(r.threshold_max, unit)}"
        if r.threshold_min is not None:
            text += f", min {in_unit(r.threshold_min, unit)}"
        if r.p_value is not None:
            text += f", p={r.p_value:.3g}"
        text += ")"
    if r.dry_run:
        text += " [dry-run]"
    return text


def describe(
    status: RolloutStatus, steps: list[EngineStep], check: StepCheck | None, policy: RolloutPolicySpec
) -> str:
    """The status message: where the rollout is (or why it ended), then every metric's numbers."""
    parts: list[str] = []
    if status.phase in TERMINAL_PHASES and status.reason:
        parts.append(f"{status.reason}: {status.outcome}" if status.outcome else status.reason)
        if status.candidate_kept_until is not None:
            parts.append(
                f"the candidate stays reachable at 0% under `canary` until "
                f"{format_time(status.candidate_kept_until)} (deadlines.keepFailedCandidate)"
            )
    if status.phase == Phase.PENDING and check is not None:
        parts.append(check.why)
    if status.phase in (Phase.PROGRESSING, Phase.PAUSED):
        step = step_at(steps, status.current_step)
        label = "gate" if step.is_gate else f"{status.canary_weight}% to the candidate"
        label = f"probe: {label}" if step.probe else label
        parts.append(f"step {status.current_step + 1}/{len(steps)} ({label})")
        if check is not None and status.phase == Phase.PROGRESSING:
            parts.append(check.why)
        if status.phase == Phase.PAUSED and status.paused_for == PausedFor.INCONCLUSIVE:
            parts.append(f"held: {', '.join(status.inconclusive)} still inconclusive; {HOLD_HINT}")
    said = " ".join(parts)  # an outcome already names the metrics that ended it, with their numbers
    summaries = (metric_summary(r, unit_of(policy, r.name)) for r in status.analysis)
    parts.extend(text for text in summaries if text not in said)
    return "; ".join(parts)


def _caveats(status: RolloutStatus) -> str:
    text = ""
    if status.without_data:
        text += f"; promoted without data for {', '.join(status.without_data)} (noData: pass)"
    if status.inconclusive:
        text += f"; promoted with {', '.join(status.inconclusive)} still inconclusive"
    return text


def _hook(inp: Inputs, kind: WebhookType) -> str:
    failed = [(k, r) for k, r in inp.webhooks.items() if key_kind(k) == kind]
    return "; ".join(f"webhook {k} answered {r.message or r.status_code}" for k, r in failed) or "a webhook"


def _step_at(prior: RolloutStatus, steps: list[EngineStep]) -> str:
    return f"step {prior.current_step + 1}/{len(steps)} at {prior.canary_weight}%"


def _inconclusive(
    prior: RolloutStatus, steps: list[EngineStep], check: StepCheck, policy: RolloutPolicySpec
) -> str:
    names = set(check.inconclusive)
    numbers = "; ".join(metric_summary(r, unit_of(policy, r.name)) for r in prior.analysis if r.name in names)
    return (
        f"{_step_at(prior, steps)} ended with {', '.join(check.inconclusive)} still inconclusive ({numbers})"
    )


def _failure_detail(
    event: Event, prior: RolloutStatus, steps: list[EngineStep], inp: Inputs, check: StepCheck | None = None
) -> str | None:
    """Why a candidate or a check failed, or a deadline passed; None for other events."""
    spec = inp.rollout.spec
    policy, cand = spec.policy.spec, inp.candidate
    if event == Event.CANDIDATE_FAILED:
        why = ": ".join(x for x in (cand.reason, cand.message) if x) or "Ready=False"
        return f"revision {spec.candidate_revision} failed: {why}"
    if event == Event.READY_DEADLINE:
        limit = format_duration(policy.deadlines.candidate_ready)
        detail = cand.message or "it is still not Ready"
        return f"revision {spec.candidate_revision} did not become Ready within {limit}: {detail}"
    if event == Event.REGRESSION and inp.analysis is not None:
        failed = [r for r in inp.analysis.results if r.name in inp.analysis.failed]
        # plain words and the numbers; the judges' statistics go to the Event (event_detail) and stay in
        # status.analysis
        return (
            f"{', '.join(r.name for r in failed)} regressed at {_step_at(prior, steps)}; traffic is back "
            f"on {spec.stable_revision}: "
            + "; ".join(metric_summary(r, unit_of(policy, r.name)) for r in failed)
        )
    if event in (Event.DEADLINE_ROLLBACK, Event.DEADLINE_PAUSE):
        deadline = policy.deadlines
        why = (
            f"the rollout passed its deadline of {format_duration(deadline.rollout)} at "
            f"{_step_at(prior, steps)} (onRolloutDeadline: {deadline.on_rollout_deadline.value})"
        )
        if check is not None and check.why.startswith(NOT_ENOUGH_TRAFFIC):
            why += f": not enough traffic to tell ({check.why.split(': ', 1)[1]})"
        return why
    hooks = {
        Event.PRE_ROLLOUT_HOOK_FAILED: ("the pre-rollout check failed", WebhookType.PRE_ROLLOUT),
        Event.STEP_HOOK_FAILED: (f"a step check failed at {_step_at(prior, steps)}", WebhookType.STEP),
        Event.ROLLBACK_HOOK: (
            f"a rollback webhook asked for a rollback at {_step_at(prior, steps)}",
            WebhookType.ROLLBACK,
        ),
    }
    if event in hooks:
        what, kind = hooks[event]
        return f"{what}: {_hook(inp, kind)}"
    return None


def event_detail(event: Event, inp: Inputs) -> str:
    """What an Event adds to the transition's sentence: for a regression, the judges' own account of each
    failed metric (failed checks, the sequential test's evidence)."""
    if event != Event.REGRESSION or inp.analysis is None:
        return ""
    failed = [r for r in inp.analysis.results if r.name in inp.analysis.failed and r.message]
    return "".join(f"; {r.name}: {r.message}" for r in failed)


def transition_detail(
    event: Event,
    row: Row,
    prior: RolloutStatus,
    status: RolloutStatus,
    steps: list[EngineStep],
    inp: Inputs,
    check: StepCheck | None,
) -> str:
    """What happened and why, in one sentence: the Event's message after "From -> To: ", and the outcome of a
    rollout this transition ends."""
    failure = _failure_detail(event, prior, steps, inp, check)
    if failure is not None:
        return failure
    spec = inp.rollout.spec
    if event == Event.OPTED_OUT:
        return (
            f"the {spec.target.kind} no longer carries the knrollout.dev/policy label; stable "
            f"{spec.stable_revision} serves 100% again and its traffic is no longer managed"
        )
    if event == Event.SUPERSEDED:
        return f"revision {inp.superseded_by} replaced candidate {spec.candidate_revision}"
    if event == Event.TEMPLATE_REVERTED:
        return f"the template is back to stable {spec.stable_revision}'s configuration"
    if event in (Event.INCONCLUSIVE_ROLLBACK, Event.INCONCLUSIVE_HOLD) and check is not None:
        then = "rollback" if event == Event.INCONCLUSIVE_ROLLBACK else f"hold, so {HOLD_HINT}"
        return f"{_inconclusive(prior, steps, check, spec.policy.spec)}; onInconclusive: {then}"
    if event in (Event.STEP_DONE, Event.STEP_DONE_AT_GATE, Event.STEP_DONE_LAST) and check is not None:
        # the step that ended, as it was: the new status already shows the next step (or 100% when promoting)
        return f"{_step_at(prior, steps)}: {check.why}"
    if event == Event.PROMOTION_APPLIED:
        return f"revision {spec.candidate_revision} serves 100% and is the new stable{_caveats(status)}"
    req = spec.request
    if req is not None and event.name.endswith("REQUESTED"):
        who = req.requested_by or "someone"
        said = f" ({req.reason})" if req.reason else ""
        if event == Event.UNDO_REQUESTED:
            return (
                f"undo requested by {who}{said}: {status.undone_to} serves 100% again instead of "
                f"{spec.candidate_revision}, until a new revision is rolled out"
            )
        return f"{req.action.value} requested by {who}{said} at {_step_at(prior, steps)}"
    return row.reason


def conditions(status: RolloutStatus, generation: int | None, now: datetime, inp: Inputs) -> RolloutStatus:
    conds = status.conditions
    phase = status.phase
    terminal = phase in TERMINAL_PHASES
    done_message = (status.outcome or status.reason) if terminal else "the rollout is running"
    conds = set_condition(
        conds,
        "Completed",
        "True" if terminal else "False",
        status.reason if terminal else phase.value,
        done_message,
        now,
        generation,
    )
    prog_status: ConditionStatus = "False" if terminal or phase == Phase.PAUSED else "True"
    if terminal:
        prog_reason, prog_message = status.reason or phase.value, f"finished: {phase.value}"
    elif phase == Phase.PAUSED:
        why = PAUSED_FOR.get(status.paused_for or PausedFor.REQUEST, PAUSED_FOR[PausedFor.REQUEST])
        prog_reason, prog_message = status.reason or "Paused", why
    else:
        prog_reason, prog_message = status.reason or phase.value, phase.value
    conds = set_condition(conds, "Progressing", prog_status, prog_reason, prog_message, now, generation)
    if status.traffic_applied:
        conds = set_condition(
            conds, "TrafficApplied", "True", "PlanServed", "Knative serves the planned split", now, generation
        )
    else:
        why = "Knative has not yet served the planned split"
        if inp.traffic is not None and inp.traffic.failed:
            why = "the Service/Route is not Ready (a referenced revision may be missing or unready)"
        conds = set_condition(conds, "TrafficApplied", "False", "WaitingForKnative", why, now, generation)
    return status.model_copy(update={"conditions": conds})
