"""`decide`: one pure step of the Rollout state machine.

Inputs (policy, current status, candidate readiness, the split Knative serves, a fresh analysis, manual
requests, webhook results, time) -> the next status, the traffic plan and the actions (events to record, a
retry to start). Phase changes come only from the table in `rollout.engine.transitions`; this module derives
which events hold and does the bookkeeping (step clock, traffic applied, conditions, message).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.api.durations import format_duration
from rollout.api.policy import RolloutPolicySpec, WebhookType
from rollout.api.rollout import (
    TERMINAL_PHASES,
    ManualRequest,
    Phase,
    RequestAction,
    Rollout,
    RolloutStatus,
)
from rollout.api.strategy import InconclusiveAction
from rollout.engine.conditions import get_condition, set_condition
from rollout.engine.inputs import Action, Decision, Inputs, RecordEvent, RetryRollout
from rollout.engine.messages import conditions, describe, event_detail, transition_detail
from rollout.engine.plans import TrafficPlan, plan_applied, plan_for
from rollout.engine.stepcheck import StepCheck, seconds_since, step_check
from rollout.engine.steps import EngineStep, engine_steps
from rollout.engine.transitions import OPTED_OUT_REASON, Effect, Event, Row, lookup
from rollout.engine.webhooks import hooks_waiting

DEADLINE_CONDITION = "DeadlineExceeded"

# The events that end the decisive step: the status keeps what it ended without (no data, no conclusion).
_DECISIVE = (Event.STEP_DONE_LAST, Event.INCONCLUSIVE_HOLD, Event.INCONCLUSIVE_ROLLBACK)

# The event each manual request raises (resume depends on where the rollout is paused).
_REQUEST_EVENTS: dict[RequestAction, Event] = {
    RequestAction.ABORT: Event.ABORT_REQUESTED,
    RequestAction.PROMOTE: Event.PROMOTE_REQUESTED,
    RequestAction.PAUSE: Event.PAUSE_REQUESTED,
    RequestAction.RETRY: Event.RETRY_REQUESTED,
}


def pending_request(rollout: Rollout) -> ManualRequest | None:
    req = rollout.spec.request
    if req is None or req.id == rollout.status.handled_request:
        return None
    return req


def analysis_since(rollout: Rollout) -> datetime | None:
    """Analysis windows may start from here: the step's traffic served plus the policy's warm-up, or the end of
    the last window analysed if later. None while analysis does not run (not Progressing/Paused, or the step's
    traffic is not served yet)."""
    status = rollout.status
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or not status.traffic_applied:
        return None
    if status.step_started_at is None:
        return None
    warmed = status.step_started_at + timedelta(seconds=rollout.spec.policy.spec.analysis.warmup)
    return max(warmed, status.last_analysis_at) if status.last_analysis_at is not None else warmed


def analysis_due(rollout: Rollout, now: datetime) -> bool:
    """An analysis tick is due: analysis runs and one interval has passed since `analysis_since`."""
    since = analysis_since(rollout)
    interval = timedelta(seconds=rollout.spec.policy.spec.analysis.interval)
    return since is not None and now - since >= interval


def _hooks_done(
    policy: RolloutPolicySpec, kind: WebhookType, done: set[str], step: int | None = None
) -> bool:
    return not hooks_waiting(policy, kind, done, step)


def _next_kind(steps: list[EngineStep], index: int) -> str:
    """'last' if there is no step after `index`, else the next step's kind ('gate' or 'traffic')."""
    if index + 1 >= len(steps):
        return "last"
    return "gate" if steps[index + 1].is_gate else "traffic"


def _events(inp: Inputs, status: RolloutStatus, steps: list[EngineStep], check: StepCheck) -> list[Event]:
    """Every event that holds now, in priority order."""
    rollout, now = inp.rollout, inp.now
    policy = rollout.spec.policy.spec
    phase = status.phase
    events: list[Event] = []
    req = pending_request(rollout)
    done = set(status.completed_webhooks)
    step = steps[min(status.current_step, len(steps) - 1)]
    at_gate = phase == Phase.PAUSED and step.is_gate and status.reason in ("ManualGate",)
    age = seconds_since(now, status.started_at)

    if req is not None and req.action == RequestAction.ABORT:
        events.append(Event.ABORT_REQUESTED)
    if inp.opted_out:
        events.append(Event.OPTED_OUT)
    if inp.superseded_by:
        events.append(Event.SUPERSEDED)
    if inp.template_reverted:
        events.append(Event.TEMPLATE_REVERTED)
    if inp.candidate.ready is False:
        events.append(Event.CANDIDATE_FAILED)
    if phase == Phase.PENDING and inp.candidate.ready is not True and age >= policy.deadlines.candidate_ready:
        events.append(Event.READY_DEADLINE)
    for key, result in inp.webhooks.items():
        if key.startswith("preRollout/") and not result.ok:
            events.append(Event.PRE_ROLLOUT_HOOK_FAILED)
        elif key.startswith("step-") and not result.ok:
            events.append(Event.STEP_HOOK_FAILED)
        elif key.startswith("rollback/") and result.ok:
            events.append(Event.ROLLBACK_HOOK)
    if inp.analysis is not None and inp.analysis.failed:
        events.append(Event.REGRESSION)
    if age >= policy.deadlines.rollout and get_condition(status.conditions, DEADLINE_CONDITION) is None:
        events.append(
            Event.DEADLINE_ROLLBACK
            if policy.deadlines.on_rollout_deadline == "rollback"
            else Event.DEADLINE_PAUSE
        )
    if req is not None and req.action in _REQUEST_EVENTS and req.action != RequestAction.ABORT:
        events.append(_REQUEST_EVENTS[req.action])
    gate_timer = (
        step.gate_duration is not None and seconds_since(now, status.step_started_at) >= step.gate_duration
    )
    if req is not None and req.action == RequestAction.RESUME and not at_gate:
        events.append(Event.RESUME_REQUESTED)
    if at_gate and ((req is not None and req.action == RequestAction.RESUME) or gate_timer):
        events.append(
            {"last": Event.GATE_OPENED_LAST, "gate": Event.GATE_OPENED_AT_GATE, "traffic": Event.GATE_OPENED}[
                _next_kind(steps, status.current_step)
            ]
        )
    if (
        phase == Phase.PENDING
        and inp.candidate.ready is True
        and _hooks_done(policy, WebhookType.PRE_ROLLOUT, done)
    ):
        events.append(Event.CANDIDATE_READY_AT_GATE if steps[0].is_gate else Event.CANDIDATE_READY)
    if phase == Phase.PROGRESSING and check.done:
        kind = _next_kind(steps, status.current_step)
        if kind == "traffic":
            events.append(Event.STEP_DONE)
        elif kind == "gate":
            events.append(Event.STEP_DONE_AT_GATE)
        elif check.inconclusive and step.on_inconclusive == InconclusiveAction.ROLLBACK:
            events.append(Event.INCONCLUSIVE_ROLLBACK)
        elif check.inconclusive and step.on_inconclusive == InconclusiveAction.HOLD:
            events.append(Event.INCONCLUSIVE_HOLD)
        elif _hooks_done(policy, WebhookType.CONFIRM_PROMOTION, done):
            events.append(Event.STEP_DONE_LAST)
    if phase == Phase.PROMOTING and status.traffic_applied:
        events.append(Event.PROMOTION_APPLIED)
    return events


def request_applies(action: RequestAction, rollout: Rollout) -> bool:
    """Whether the controller would act on `action` for this rollout as it stands (else it records
    RequestIgnored): the transition table has a row for its event in the current phase."""
    req = ManualRequest(action=action, id="check", requested_at=datetime.now(UTC))
    status = rollout.status
    return (
        lookup(status.phase, _request_event(req, status, engine_steps(rollout.spec.policy.spec))) is not None
    )


def _request_event(req: ManualRequest, status: RolloutStatus, steps: list[EngineStep]) -> Event:
    if req.action == RequestAction.RESUME:
        step = steps[min(status.current_step, len(steps) - 1)]
        if status.phase == Phase.PAUSED and step.is_gate and status.reason == "ManualGate":
            return {
                "last": Event.GATE_OPENED_LAST,
                "gate": Event.GATE_OPENED_AT_GATE,
                "traffic": Event.GATE_OPENED,
            }[_next_kind(steps, status.current_step)]
        return Event.RESUME_REQUESTED
    return _REQUEST_EVENTS[req.action]


def _apply_effect(row: Row, status: RolloutStatus, steps: list[EngineStep], inp: Inputs) -> dict[str, Any]:
    """Field updates a transition makes besides phase and reason."""
    now = inp.now
    updates: dict[str, Any] = {}
    if row.effect in (Effect.START, Effect.ADVANCE):
        index = 0 if row.effect == Effect.START else status.current_step + 1
        index = min(index, len(steps) - 1)
        updates["current_step"] = index
        updates["step_started_at"] = now if steps[index].is_gate else None
        updates["traffic_applied"] = False
    if row.effect == Effect.PAUSE:
        updates["paused_from"] = status.phase
    if row.effect == Effect.RESUME:
        updates["paused_from"] = None
    if row.to != Phase.PAUSED:
        updates.setdefault("paused_from", None)
    if row.effect == Effect.FINISH:
        updates["finished_at"] = now
    if row.to == Phase.PROMOTING:
        updates["traffic_applied"] = False
    return updates


# Phases whose candidate may stay parked at 0% under `canary` for a while (deadlines.keepFailedCandidate).
_PARKING = (Phase.ROLLED_BACK, Phase.FAILED, Phase.ABORTED)


def kept_until(rollout: Rollout, status: RolloutStatus) -> datetime | None:
    """Until when a finished rollout's candidate stays parked under `canary`; None when it does not."""
    if status.phase not in _PARKING or status.reason == OPTED_OUT_REASON or status.finished_at is None:
        return None
    keep = rollout.spec.policy.spec.deadlines.keep_failed_candidate
    return status.finished_at + timedelta(seconds=keep)


def _plan(
    rollout: Rollout, status: RolloutStatus, steps: list[EngineStep], candidate_ready: bool, now: datetime
) -> TrafficPlan:
    spec = rollout.spec
    until = kept_until(rollout, status)
    park = status.reason != OPTED_OUT_REASON and (until is None or now < until)
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


def _with_traffic(
    rollout: Rollout, status: RolloutStatus, steps: list[EngineStep], inp: Inputs
) -> tuple[RolloutStatus, TrafficPlan]:
    plan = _plan(rollout, status, steps, inp.candidate.ready is True, inp.now)
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
    step = steps[min(status.current_step, len(steps) - 1)]
    if (
        applied
        and status.phase in (Phase.PROGRESSING, Phase.PAUSED)
        and not step.is_gate
        and status.step_started_at is None
    ):
        updates["step_started_at"] = _served_since(rollout, status, inp)
    return status.model_copy(update=updates), plan


def _served_since(rollout: Rollout, status: RolloutStatus, inp: Inputs) -> datetime:
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
        or before.current_step != status.current_step
        or before.phase not in (Phase.PROGRESSING, Phase.PAUSED)
    ):
        return inp.now
    return since


def decide(inp: Inputs) -> Decision:
    rollout, now = inp.rollout, inp.now
    policy = rollout.spec.policy.spec
    generation = rollout.metadata.generation
    steps = engine_steps(policy)
    status = rollout.status
    actions: list[Action] = []
    log: dict[str, Any] = {}

    if status.started_at is None:
        status = status.model_copy(update={"started_at": now, "step_count": len(steps)})

    # 1. bookkeeping: fresh analysis, webhook results, traffic served
    if inp.analysis is not None:
        status = status.model_copy(
            update={
                "analysis": list(inp.analysis.results),
                "judge_state": dict(inp.analysis.judge_state),
                "last_analysis_at": inp.analysis.window_end,
            }
        )
        log["analysis"] = [r.to_wire() for r in inp.analysis.results]
    completed = list(status.completed_webhooks)
    for key, result in inp.webhooks.items():
        gate_passed = result.ok and not key.startswith("rollback/")
        if (gate_passed or key.startswith("postRollout/")) and key not in completed:
            completed.append(key)
        # a rollback hook's non-2xx answer means "no rollback": an answer, not a failure of the hook
        answered_no = (
            key.startswith("rollback/") and result.status_code is not None and result.status_code < 500
        )
        if not result.ok and not key.startswith("postRollout/") and not answered_no:
            actions.append(RecordEvent("Warning", "WebhookFailed", f"webhook {key} failed: {result.message}"))
    status = status.model_copy(
        update={"completed_webhooks": completed, "pending_webhooks": list(inp.webhooks_pending)}
    )
    status, _ = _with_traffic(rollout, status, steps, inp)
    step = steps[min(status.current_step, len(steps) - 1)]
    check = step_check(policy, step, status, now) if status.phase == Phase.PROGRESSING else None

    # 2. which events hold, and the first that the table accepts in this phase
    events = _events(inp, status, steps, check or StepCheck(False, ""))
    chosen: tuple[Event, Row] | None = None
    for event in events:
        row = lookup(status.phase, event)
        if row is not None:
            chosen = (event, row)
            break

    # 3. manual requests: acknowledge the one acted on, and any that cannot apply in this phase
    req = pending_request(rollout)
    if req is not None:
        req_event = _request_event(req, status, steps)
        if chosen is not None and chosen[0] == req_event:
            status = status.model_copy(update={"handled_request": req.id})
        elif lookup(status.phase, req_event) is None:
            status = status.model_copy(update={"handled_request": req.id})
            actions.append(
                RecordEvent(
                    "Warning",
                    "RequestIgnored",
                    f"{req.action.value} requested by {req.requested_by or 'someone'} does not apply "
                    f"to a rollout in phase {status.phase.value}",
                )
            )

    # 4. the transition
    if chosen is not None:
        event, row = chosen
        prior = status
        updates = _apply_effect(row, status, steps, inp)
        to = row.to
        if row.effect == Effect.RESUME and status.paused_from is not None:
            to = status.paused_from
        updates.update({"phase": to, "reason": row.reason})
        if event in (Event.DEADLINE_ROLLBACK, Event.DEADLINE_PAUSE):
            conds = set_condition(
                status.conditions,
                DEADLINE_CONDITION,
                "True",
                row.reason,
                f"the rollout passed its deadline of {format_duration(policy.deadlines.rollout)}",
                now,
                generation,
            )
            updates["conditions"] = conds
        if check is not None and event in _DECISIVE:
            updates.update(
                {"without_data": list(check.without_data), "inconclusive": list(check.inconclusive)}
            )
        status = status.model_copy(update=updates)
        status, _ = _with_traffic(rollout, status, steps, inp)
        if row.effect == Effect.RETRY:
            actions.append(RetryRollout(rollout.spec.attempt + 1))
        detail = transition_detail(event, row, prior, status, steps, inp, check)
        if row.to in TERMINAL_PHASES and prior.phase not in TERMINAL_PHASES:
            status = status.model_copy(update={"outcome": detail})
        message = f"{prior.phase.value} -> {status.phase.value}: {detail}{event_detail(event, inp)}"
        actions.append(RecordEvent("Warning" if row.warning else "Normal", row.reason, message))
        log.update(
            {"event": event.value, "from": prior.phase.value, "to": status.phase.value, "reason": row.reason}
        )

    # 5. conditions and message
    status, plan = _with_traffic(rollout, status, steps, inp)
    until = kept_until(rollout, status)
    parked = until is not None and now < until and rollout.spec.candidate_revision in plan.tags().values()
    status = status.model_copy(update={"candidate_kept_until": until if parked else None})
    new_check = (
        step_check(policy, steps[min(status.current_step, len(steps) - 1)], status, now)
        if (status.phase == Phase.PROGRESSING)
        else None
    )
    status = conditions(status, generation, now, inp)
    # why it ended leads the message (status.outcome), also when a finished rollout is decided again
    message = describe(status, steps, new_check, policy)
    counted = f"{min(status.current_step, len(steps) - 1) + 1}/{len(steps)}"
    status = status.model_copy(
        update={"message": message[:2048], "observed_generation": generation, "step": counted}
    )
    log.update(
        {
            "phase": status.phase.value,
            "step": status.current_step,
            "canary_weight": status.canary_weight,
            "traffic_applied": status.traffic_applied,
        }
    )
    return Decision(
        status=status,
        plan=plan,
        actions=tuple(actions),
        event=chosen[0] if chosen else None,
        row=chosen[1] if chosen else None,
        log=log,
    )
