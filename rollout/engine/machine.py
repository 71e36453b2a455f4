"""`decide`: one pure step of the Rollout state machine.

Inputs (policy, current status, candidate readiness, the split Knative serves, a fresh analysis, manual
requests, webhook results, time) -> the next status, the traffic plan and the actions (events to record, a
retry to start). Phase changes come only from the table in `rollout.engine.transitions`; this module derives
which events hold and does the bookkeeping (step clock, traffic applied, conditions, message).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rollout.api.durations import format_duration
from rollout.api.policy import RolloutPolicySpec, WebhookType
from rollout.api.rollout import (
    REQUEST_HISTORY,
    TERMINAL_PHASES,
    HandledRequest,
    ManualRequest,
    PausedFor,
    Phase,
    RequestAction,
    Rollout,
    RolloutStatus,
)
from rollout.api.strategy import InconclusiveAction
from rollout.engine import capacity, prewarm
from rollout.engine.conditions import get_condition, set_condition
from rollout.engine.inputs import Action, Decision, Inputs, RecordEvent, RetryRollout
from rollout.engine.messages import conditions, describe, event_detail, transition_detail
from rollout.engine.plans import TrafficPlan
from rollout.engine.served_plan import kept_until, with_traffic
from rollout.engine.stepcheck import StepCheck, seconds_since, step_check
from rollout.engine.steps import EngineStep, engine_steps, step_at
from rollout.engine.transitions import Effect, Event, Row, lookup
from rollout.engine.webhooks import hooks_waiting, key_kind

DEADLINE_CONDITION = "DeadlineExceeded"

# The events that end the decisive step: the status keeps what it ended without (no data, no conclusion).
_DECISIVE = (Event.STEP_DONE_LAST, Event.INCONCLUSIVE_HOLD, Event.INCONCLUSIVE_ROLLBACK)

# The event a failed gate-like hook raises; a rollback hook raises Event.ROLLBACK_HOOK when it answers 2xx.
_HOOK_FAILED = {
    WebhookType.PRE_ROLLOUT: Event.PRE_ROLLOUT_HOOK_FAILED,
    WebhookType.STEP: Event.STEP_HOOK_FAILED,
}

# The event each manual request raises (resume depends on where the rollout is paused).
_REQUEST_EVENTS: dict[RequestAction, Event] = {
    RequestAction.ABORT: Event.ABORT_REQUESTED,
    RequestAction.PROMOTE: Event.PROMOTE_REQUESTED,
    RequestAction.PAUSE: Event.PAUSE_REQUESTED,
    RequestAction.RETRY: Event.RETRY_REQUESTED,
    RequestAction.UNDO: Event.UNDO_REQUESTED,
}


def pending_request(rollout: Rollout) -> ManualRequest | None:
    req = rollout.spec.request
    if req is None or req.id == rollout.status.handled_request:
        return None
    return req


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
    """Every event that holds now, in priority order: what ends or interrupts a rollout first, then what a
    person asked, then progress."""
    return [
        *_ending_events(inp, status),
        *_request_events(inp, status, steps),
        *_progress_events(inp, status, steps, check),
    ]


def _ending_events(inp: Inputs, status: RolloutStatus) -> list[Event]:
    """What ends or interrupts a rollout whatever step it is at: an abort, the target changing under it, a
    failed candidate or hook, a regression, the deadline."""
    rollout, policy = inp.rollout, inp.rollout.spec.policy.spec
    events: list[Event] = []
    req = pending_request(rollout)
    if req is not None and req.action == RequestAction.ABORT:
        events.append(Event.ABORT_REQUESTED)
    facts = (
        (inp.opted_out, Event.OPTED_OUT),
        (bool(inp.superseded_by), Event.SUPERSEDED),
        (inp.template_reverted, Event.TEMPLATE_REVERTED),
        (inp.candidate.ready is False, Event.CANDIDATE_FAILED),
    )
    events.extend(event for holds, event in facts if holds)
    age = seconds_since(inp.now, status.started_at)
    if (
        status.phase == Phase.PENDING
        and inp.candidate.ready is not True
        and age >= policy.deadlines.candidate_ready
    ):
        events.append(Event.READY_DEADLINE)
    for key, result in inp.webhooks.items():
        hook = key_kind(key)
        if hook in _HOOK_FAILED and not result.ok:
            events.append(_HOOK_FAILED[hook])
        elif hook == WebhookType.ROLLBACK and result.ok:
            events.append(Event.ROLLBACK_HOOK)
    if inp.analysis is not None and inp.analysis.failed:
        events.append(Event.REGRESSION)
    if age >= policy.deadlines.rollout and get_condition(status.conditions, DEADLINE_CONDITION) is None:
        pause = policy.deadlines.on_rollout_deadline != "rollback"
        events.append(Event.DEADLINE_PAUSE if pause else Event.DEADLINE_ROLLBACK)
    return events


def _gate_opened(steps: list[EngineStep], index: int) -> Event:
    """The event of a gate at `index` opening, by what follows it."""
    return {"last": Event.GATE_OPENED_LAST, "gate": Event.GATE_OPENED_AT_GATE, "traffic": Event.GATE_OPENED}[
        _next_kind(steps, index)
    ]


def _request_events(inp: Inputs, status: RolloutStatus, steps: list[EngineStep]) -> list[Event]:
    """A person's promote, pause, resume or retry (abort is an ending event), and a gate opening by request
    or by its duration."""
    req = pending_request(inp.rollout)
    events: list[Event] = []
    if req is not None and req.action in _REQUEST_EVENTS and req.action != RequestAction.ABORT:
        events.append(_REQUEST_EVENTS[req.action])
    at_gate = status.phase == Phase.PAUSED and status.paused_for == PausedFor.GATE
    resume = req is not None and req.action == RequestAction.RESUME
    if resume and not at_gate:
        events.append(Event.RESUME_REQUESTED)
    step = step_at(steps, status.current_step)
    timer = (
        step.gate_duration is not None
        and seconds_since(inp.now, status.step_started_at) >= step.gate_duration
    )
    if at_gate and (resume or timer):
        events.append(_gate_opened(steps, status.current_step))
    return events


def _progress_events(
    inp: Inputs, status: RolloutStatus, steps: list[EngineStep], check: StepCheck
) -> list[Event]:
    """The candidate ready, a step done (what its end means depends on the next step and, for the decisive
    step, on inconclusive evidence and confirmPromotion hooks), the promotion served."""
    policy = inp.rollout.spec.policy.spec
    done = set(status.completed_webhooks)
    step = step_at(steps, status.current_step)
    if status.phase == Phase.PENDING:
        ready = (
            inp.candidate.ready is True
            and status.short_since is None  # its min-scale pods first (rollout.engine.capacity)
            and prewarm.waiting(status, inp) is None  # and the first share's pods (rollout.engine.prewarm)
            and _hooks_done(policy, WebhookType.PRE_ROLLOUT, done)
        )
        return [Event.CANDIDATE_READY_AT_GATE if steps[0].is_gate else Event.CANDIDATE_READY] if ready else []
    if status.phase == Phase.PROMOTING:
        return [Event.PROMOTION_APPLIED] if status.traffic_applied else []
    if status.phase != Phase.PROGRESSING or not check.done:
        return []
    kind = _next_kind(steps, status.current_step)
    if kind != "last":
        return [Event.STEP_DONE if kind == "traffic" else Event.STEP_DONE_AT_GATE]
    if check.inconclusive and step.on_inconclusive == InconclusiveAction.ROLLBACK:
        return [Event.INCONCLUSIVE_ROLLBACK]
    if check.inconclusive and step.on_inconclusive == InconclusiveAction.HOLD:
        return [Event.INCONCLUSIVE_HOLD]
    return [Event.STEP_DONE_LAST] if _hooks_done(policy, WebhookType.CONFIRM_PROMOTION, done) else []


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
        if status.phase == Phase.PAUSED and status.paused_for == PausedFor.GATE:
            return _gate_opened(steps, status.current_step)
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
        updates["step_requests"] = 0
        updates["prewarm_since"] = None  # the share it waited for is given
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


def decide(inp: Inputs) -> Decision:
    """One step of the state machine: record the inputs, pick the event the table accepts, acknowledge the
    manual request, make the transition, then derive traffic, conditions and the message."""
    rollout, now = inp.rollout, inp.now
    steps = engine_steps(rollout.spec.policy.spec)
    status = rollout.status
    if status.started_at is None:
        status = status.model_copy(update={"started_at": now, "step_count": len(steps)})
    status = capacity.observe(status, inp)
    inp, status, left_out = capacity.screen(rollout, status, inp)
    status, actions, log = _record_inputs(status, inp)
    if left_out is not None:
        log["left_out"] = left_out
    status, _ = with_traffic(rollout, status, steps, inp)
    raw = _step_check(rollout, status, steps, now)
    grace = rollout.spec.policy.spec.analysis.not_ready_grace
    due = _share_due(status, inp, raw)
    short = prewarm.capped(status, steps, inp, due)
    if short is not None:
        actions.append(RecordEvent("Warning", "CandidateCapped", short))
        log["candidate_capped"] = short
    status, stopped = prewarm.observe(status, steps, inp, due, grace)
    if stopped is not None:
        actions.append(RecordEvent("Warning", "PrewarmStopped", stopped))
        log["prewarm_stopped"] = stopped
    check = _warmed(raw, status, inp)
    if status.prewarm_since is not None:
        log["prewarm"] = {"pods": inp.candidate.pods, "wanted": status.prewarm_pods}
    chosen = _choose(_events(inp, status, steps, check or StepCheck(False, "")), status.phase)
    status = _acknowledge_request(rollout, status, steps, chosen, actions, now)
    if chosen is not None:
        status = _transition(chosen, status, steps, inp, check, actions, log)
    status, plan = _conclude(status, steps, inp, log)
    return Decision(
        status=status,
        plan=plan,
        actions=tuple(actions),
        event=chosen[0] if chosen else None,
        row=chosen[1] if chosen else None,
        log=log,
    )


def _share_due(status: RolloutStatus, inp: Inputs, check: StepCheck | None) -> bool:
    """Whether the candidate's next share is due now (its pods decide when it is given). A candidate short
    of the pods a hold asked for is still warming for it."""
    warming = status.prewarm_since is not None and status.short_since is not None
    if status.phase == Phase.PENDING:
        return inp.candidate.ready is True and (status.short_since is None or warming)
    return check is not None and (check.done or warming)


def _warmed(check: StepCheck | None, status: RolloutStatus, inp: Inputs) -> StepCheck | None:
    """The step check, held while the next share waits for the candidate's pre-warmed pods (while Pending,
    only that wait)."""
    why = prewarm.waiting(status, inp)
    if status.phase == Phase.PENDING:
        return None if why is None else StepCheck(False, why)
    if check is None or not check.done or why is None:
        return check
    return StepCheck(False, why)


def _step_check(
    rollout: Rollout, status: RolloutStatus, steps: list[EngineStep], now: datetime
) -> StepCheck | None:
    """Whether the current step may end, for a Progressing rollout; None in every other phase."""
    if status.phase != Phase.PROGRESSING:
        return None
    return step_check(rollout.spec.policy.spec, step_at(steps, status.current_step), status, now)


def _record_inputs(status: RolloutStatus, inp: Inputs) -> tuple[RolloutStatus, list[Action], dict[str, Any]]:
    """Bookkeeping of what arrived: a fresh analysis, webhook results (passed gates are remembered, failures
    recorded as Events; a rollback hook's non-5xx answer means "no rollback", not a failure)."""
    actions: list[Action] = []
    log: dict[str, Any] = {}
    if inp.analysis is not None:
        counted = [r.canary_requests for r in inp.analysis.results if r.canary_requests is not None]
        status = status.model_copy(
            update={
                "analysis": list(inp.analysis.results),
                "judge_state": dict(inp.analysis.judge_state),
                "last_analysis_at": inp.analysis.window_end,
                # every metric reads the same requests: the window's count is the largest any reported
                "step_requests": status.step_requests + max(counted, default=0),
            }
        )
        log["analysis"] = [r.to_wire() for r in inp.analysis.results]
    completed = list(status.completed_webhooks)
    for key, result in inp.webhooks.items():
        kind = key_kind(key)
        passed = (result.ok and kind != WebhookType.ROLLBACK) or kind == WebhookType.POST_ROLLOUT
        if passed and key not in completed:
            completed.append(key)
        answered_no = (
            kind == WebhookType.ROLLBACK and result.status_code is not None and result.status_code < 500
        )
        if not result.ok and kind != WebhookType.POST_ROLLOUT and not answered_no:
            actions.append(RecordEvent("Warning", "WebhookFailed", f"webhook {key} failed: {result.message}"))
    status = status.model_copy(
        update={"completed_webhooks": completed, "pending_webhooks": list(inp.webhooks_pending)}
    )
    return status, actions, log


def _choose(events: list[Event], phase: Phase) -> tuple[Event, Row] | None:
    """The first event (in priority order) that the table accepts in `phase`."""
    for event in events:
        row = lookup(phase, event)
        if row is not None:
            return event, row
    return None


def _acknowledge_request(
    rollout: Rollout,
    status: RolloutStatus,
    steps: list[EngineStep],
    chosen: tuple[Event, Row] | None,
    actions: list[Action],
    now: datetime,
) -> RolloutStatus:
    """Mark the pending manual request handled when it is acted on, or when it cannot apply in this phase
    (then a RequestIgnored Event says so), and keep it in status.requests; a request that may apply later
    stays pending."""
    req = pending_request(rollout)
    if req is None:
        return status
    req_event = _request_event(req, status, steps)
    if chosen is not None and chosen[0] == req_event:
        outcome = "Applied"
    elif lookup(status.phase, req_event) is None:
        outcome = "Ignored"
        actions.append(
            RecordEvent(
                "Warning",
                "RequestIgnored",
                f"{req.action.value} requested by {req.requested_by or 'someone'} does not apply "
                f"to a rollout in phase {status.phase.value}",
            )
        )
    else:
        return status
    handled = HandledRequest(
        action=req.action,
        id=req.id,
        requested_at=req.requested_at,
        requested_by=req.requested_by,
        reason=req.reason,
        outcome=outcome,
        handled_at=now,
    )
    history = [*status.requests, handled][-REQUEST_HISTORY:]
    return status.model_copy(update={"handled_request": req.id, "requests": history})


def _transition(
    chosen: tuple[Event, Row],
    status: RolloutStatus,
    steps: list[EngineStep],
    inp: Inputs,
    check: StepCheck | None,
    actions: list[Action],
    log: dict[str, Any],
) -> RolloutStatus:
    """The row's phase, reason and effect, with its Event; the outcome sentence when the rollout ends."""
    event, row = chosen
    rollout = inp.rollout
    policy = rollout.spec.policy.spec
    prior = status
    updates = _apply_effect(row, status, steps, inp)
    to = status.paused_from if row.effect == Effect.RESUME and status.paused_from is not None else row.to
    updates.update({"phase": to, "reason": row.reason, "paused_for": row.paused_for})
    if event in (Event.DEADLINE_ROLLBACK, Event.DEADLINE_PAUSE):
        why = f"the rollout passed its deadline of {format_duration(policy.deadlines.rollout)}"
        updates["conditions"] = set_condition(
            status.conditions,
            DEADLINE_CONDITION,
            "True",
            row.reason,
            why,
            inp.now,
            rollout.metadata.generation,
        )
    if event == Event.UNDO_REQUESTED:  # the previous stable, or the Ready revision the person named
        req = pending_request(rollout)
        updates["undone_to"] = (req.revision if req is not None else None) or rollout.spec.stable_revision
    if check is not None and event in _DECISIVE:
        updates.update({"without_data": list(check.without_data), "inconclusive": list(check.inconclusive)})
    status = status.model_copy(update=updates)
    status, _ = with_traffic(rollout, status, steps, inp)
    if row.effect == Effect.RETRY:
        actions.append(RetryRollout(rollout.spec.attempt + 1))
    detail = transition_detail(event, row, prior, status, steps, inp, check)
    if row.to in TERMINAL_PHASES and row.to != prior.phase:  # it ends now (or, undone, ends again)
        status = status.model_copy(update={"outcome": detail})
    message = f"{prior.phase.value} -> {status.phase.value}: {detail}{event_detail(event, inp)}"
    actions.append(RecordEvent("Warning" if row.warning else "Normal", row.reason, message))
    log.update(
        {"event": event.value, "from": prior.phase.value, "to": status.phase.value, "reason": row.reason}
    )
    return status


def _conclude(
    status: RolloutStatus, steps: list[EngineStep], inp: Inputs, log: dict[str, Any]
) -> tuple[RolloutStatus, TrafficPlan]:
    """What follows from the new status: the traffic plan, whether a failed candidate stays parked, the
    conditions and the message (why it ended leads it, also when a finished rollout is decided again)."""
    rollout, now = inp.rollout, inp.now
    policy = rollout.spec.policy.spec
    status, plan = with_traffic(rollout, status, steps, inp)
    until = kept_until(rollout, status)
    parked = until is not None and now < until and rollout.spec.candidate_revision in plan.tags().values()
    status = status.model_copy(update={"candidate_kept_until": until if parked else None})
    if status.phase in TERMINAL_PHASES:
        status = prewarm.clear(status)
    status = conditions(status, rollout.metadata.generation, now, inp)
    message = describe(status, steps, _warmed(_step_check(rollout, status, steps, now), status, inp), policy)
    counted = f"{min(status.current_step, len(steps) - 1) + 1}/{len(steps)}"
    status = status.model_copy(
        update={
            "message": message[:2048],
            "observed_generation": rollout.metadata.generation,
            "step": counted,
        }
    )
    log.update(
        {
            "phase": status.phase.value,
            "step": status.current_step,
            "canary_weight": status.canary_weight,
            "traffic_applied": status.traffic_applied,
        }
    )
    return status, plan
