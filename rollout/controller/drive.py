"""Driving one Rollout through one `decide`: its analysis (if a window was measured), its due webhooks, the
decision, then the writes — traffic first (merge patch with the Service's resourceVersion, validated, drift
reported), the Rollout's status once (/status, with its resourceVersion), Events last."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from opentelemetry.trace import Span

from rollout import tracing
from rollout.api.rollout import TERMINAL_PHASES, Rollout, RolloutStatus
from rollout.controller.assess import Drive, settled
from rollout.controller.context import Snapshot, target_involved
from rollout.controller.drift import detect_drift
from rollout.controller.effects import Effects
from rollout.controller.layout import same_traffic
from rollout.controller.rollouts import is_terminal, retry_of
from rollout.controller.schedule import analysis_tick, next_wakeup, window_valid
from rollout.controller.views import ObjectKey
from rollout.engine import notices
from rollout.engine.inputs import AnalysisUpdate, Decision, Inputs, RecordEvent, RetryRollout
from rollout.engine.machine import decide
from rollout.engine.notices import Delivery, DeliveryId
from rollout.engine.webhooks import GATE_KINDS, due_webhooks, key_kind
from rollout.kube.client import Obj
from rollout.kube.events import involved

log = structlog.get_logger(__name__)
SAFETY_POLL = 30.0  # an active rollout is looked at least this often, whatever else happens
SETTLE_POLL = 5.0  # a finished rollout not settled yet (the target's changes wake it sooner)


@dataclass
class DriveOutcome:
    requeue_after: float | None
    after: Rollout  # the rollout with the status just written
    finished: bool = False  # this decision ended the rollout
    created: list[Obj] = field(default_factory=list)


@dataclass
class Carry:
    """What one pass of a reconcile hands to the next after a conflict: drift seen before the status write
    (which changes what the next pass can tell), reported once the plan is written back."""

    drift: str | None = None


def _analysis(fx: Effects, rollout: Rollout) -> AnalysisUpdate | None:
    """The judges' verdict on the window the scheduler measured for this rollout, if it still applies (a
    window from before the current step, or already analysed, is dropped)."""
    ctx = fx.ctx
    if ctx.analysis is None or ctx.evaluator is None:
        return None
    measured = ctx.analysis.take(rollout)
    if measured is None:
        return None
    window, observations = measured
    if not window_valid(rollout, window):
        ctx.analysis.consumed(rollout)
        return None
    return ctx.evaluator(rollout, observations, window)


def _want_next_window(fx: Effects, key: ObjectKey, after: Rollout, now: datetime) -> None:
    """Register the window the rollout wants next, from its NEW status (a step whose traffic has just been
    served starts its windows now), so that the scheduler measures it with every rollout due at that moment."""
    ctx = fx.ctx
    if ctx.analysis is None or ctx.evaluator is None or not after.spec.policy.spec.analysis.metrics:
        return
    tick = analysis_tick(after, now)
    if tick is None:
        ctx.analysis.forget(after)
    else:
        ctx.analysis.want(key, after, tick)


def requeue_after(
    after: Rollout, now: datetime, scheduled: bool, hooks_pending: bool = False, gate_refused: bool = False
) -> float | None:
    """When to look again: the next timed moment (the analysis scheduler wakes the target itself for its
    windows, the webhook runner when a call ends; a gate that refused is asked again after the policy's
    analysis interval, the cadence Flagger asks its gates at), and at most SAFETY_POLL later."""
    if after.status.phase in TERMINAL_PHASES:
        if settled(after):
            return None
        kept = after.status.candidate_kept_until
        if after.status.traffic_applied and not hooks_pending and kept is not None:
            return max((kept - now).total_seconds(), 0.05)  # then its candidate leaves the route
        # served, postRollout webhooks due: at once (running: their end wakes it); not served yet:
        # Knative's status change wakes it
        return 0.05 if after.status.traffic_applied and not hooks_pending else SETTLE_POLL
    wake = next_wakeup(after, now)
    tick = analysis_tick(after, now)
    if scheduled and tick is not None and wake == tick.end:
        wake = tick.end + timedelta(seconds=SAFETY_POLL)  # the scheduler enqueues when it has measured
    seconds = (wake - now).total_seconds() if wake is not None else SAFETY_POLL
    if gate_refused:
        seconds = min(seconds, after.spec.policy.spec.analysis.interval)
    return max(min(seconds, SAFETY_POLL), 0.05)


async def drive(
    fx: Effects, key: ObjectKey, snap: Snapshot, d: Drive, raw: Obj, carry: Carry
) -> DriveOutcome:
    r = d.rollout
    where = {"rollout": r.metadata.name, "namespace": r.metadata.namespace, "target": r.spec.target.name}
    with tracing.span("rollout.decide", where) as current:
        return await _drive(fx, key, snap, d, raw, carry, current)


def decision_attributes(decision: Decision) -> dict[str, object]:
    """What a trace shows of a decision: the transition, where the rollout stands, each metric's verdict."""
    status = decision.status
    analysis = status.analysis
    return {
        "event": decision.event.value if decision.event is not None else None,
        "reason": decision.row.reason if decision.row is not None else "Hold",
        "phase": status.phase.value,
        "step": status.step or None,
        "weight.canary": status.canary_weight,
        "weight.stable": status.stable_weight,
        "metrics": [m.name for m in analysis],
        "verdicts": [m.verdict.value for m in analysis],
        "p_values": [m.p_value if m.p_value is not None else float("nan") for m in analysis],
    }


async def _drive(
    fx: Effects, key: ObjectKey, snap: Snapshot, d: Drive, raw: Obj, carry: Carry, current: Span | None
) -> DriveOutcome:
    ctx = fx.ctx
    rollout, view = d.rollout, snap.view
    now = ctx.clock()
    update = _analysis(fx, rollout)
    calls = due_webhooks(rollout, d.candidate.ready is True, now, analysis_due=update is not None)
    # run beside the workers, started once this decision has recorded them in status.pendingWebhooks; a
    # finished call re-queues the target, whose next pass decides on its answer
    results, starting = ctx.webhooks.collect(rollout, calls)
    pending = sorted({*ctx.webhooks.pending(rollout), *(c.key for c in starting)})
    answered = ctx.notifier.answers(rollout) if ctx.notifier is not None else {}
    decision = decide(
        Inputs(
            now=now,
            rollout=rollout,
            candidate=d.candidate,
            stable_pods=d.stable_pods,
            traffic=d.traffic,
            analysis=update,
            superseded_by=d.check.superseded_by,
            template_reverted=d.check.template_reverted,
            opted_out=snap.state.opted_out,
            webhooks=results,
            webhooks_pending=tuple(pending),
        )
    )
    tracing.annotate(current, decision_attributes(decision))
    terminal = decision.row is not None and decision.row.to in TERMINAL_PHASES and not is_terminal(rollout)
    status = _with_ledger(fx, rollout, decision, now, answered)
    outcome = DriveOutcome(None, rollout.model_copy(update={"status": status}), finished=terminal)
    for action in decision.actions:
        if isinstance(action, RetryRollout):
            policy = snap.state.policy
            body = retry_of(
                rollout,
                view,
                policy.spec if policy else None,
                policy.generation if policy else None,
                now,
                action.attempt,
            )
            message = (
                f"attempt {action.attempt} of revision {rollout.spec.candidate_revision} started (retry)"
            )
            retried, _ = await fx.create_rollout(view, body, "RetryStarted", message)
            outcome.created.append(retried)  # driven by the next reconcile, which its ADDED event queues

    desired = fx.desired_traffic(snap, decision.plan, rollout)
    # an opted-out target gets one last write: the decision that ends its rollout
    write = not same_traffic(view.spec_traffic, desired) and (not snap.state.opted_out or outcome.finished)
    if write and rollout.status.phase not in TERMINAL_PHASES and not snap.state.opted_out:
        drift = detect_drift(
            view.spec_traffic,
            rollout.status.traffic,
            view.managed_fields,
            ctx.field_manager,
            served=rollout.status.traffic_applied,
            configuration=snap.configuration,
        )
        if drift is not None:
            carry.drift = drift.message()
    # The status first: it is the memory. Killed between the two writes, the next controller finds the
    # decision recorded and writes its traffic; the other order could lose a step decided on an analysis
    # result that only lived in memory, and write the previous step's traffic back.
    await fx.write_rollout_status(raw, status)
    ctx.webhooks.start(key, rollout, starting)  # the attempt is recorded: a restart calls it again
    if ctx.notifier is not None:  # the events are recorded: a restart sends them
        ctx.notifier.acknowledge(rollout, answered)
        ctx.notifier.send(key, rollout, status)
    if update is not None and ctx.analysis is not None:
        ctx.analysis.consumed(rollout)
    await _report(fx, snap, raw, rollout, decision)  # the decision is recorded: its Events go out now
    if write and await fx.write_traffic(snap, desired) is not None and carry.drift is not None:
        await _report_drift(fx, snap, raw, rollout, carry.drift)
    carry.drift = None
    after = outcome.after
    _want_next_window(fx, key, after, now)
    scheduled = ctx.analysis is not None and ctx.evaluator is not None
    # a gate that has just answered no is asked again at the next pass, which nothing else may bring soon
    refused = any(key_kind(hook) in GATE_KINDS and not answer.ok for hook, answer in results.items())
    outcome.requeue_after = requeue_after(
        after, now, scheduled, hooks_pending=bool(pending), gate_refused=refused
    )
    if outcome.finished:
        ctx.webhooks.forget(rollout)
    return outcome


def _with_ledger(
    fx: Effects, rollout: Rollout, decision: Decision, now: datetime, answered: Mapping[DeliveryId, Delivery]
) -> RolloutStatus:
    """The decision's status with its notification events recorded and the answered deliveries settled."""
    notifier = fx.ctx.notifier
    if notifier is None:
        return decision.status
    policy, admins = rollout.spec.policy.spec.notifications, notifier.controller_destinations
    status = notices.record(
        rollout.status, decision, rollout, now, lambda e: notices.recipients(e, policy, admins)
    )
    return notices.settle(status, answered)


async def _report_drift(fx: Effects, snap: Snapshot, raw: Obj, rollout: Rollout, message: str) -> None:
    ctx = fx.ctx
    ctx.metrics.drift.inc()
    await ctx.recorder.record(target_involved(snap.view), "Warning", "TrafficDriftCorrected", message)
    await ctx.recorder.record(involved(raw), "Warning", "TrafficDriftCorrected", message)
    log.warning("traffic drift corrected", rollout=rollout.metadata.name, detail=message)


async def _report(fx: Effects, snap: Snapshot, raw: Obj, rollout: Rollout, decision: Decision) -> None:
    ctx = fx.ctx
    target, record = target_involved(snap.view), involved(raw)
    terminal = decision.row is not None and decision.row.to in TERMINAL_PHASES
    for action in decision.actions:
        if isinstance(action, RecordEvent):
            await ctx.recorder.record(record, action.type, action.reason, action.message)
            if terminal:
                await ctx.recorder.record(target, action.type, action.reason, action.message)
    outcome = decision.row.reason if decision.row is not None else "Hold"
    ctx.metrics.decisions.labels(rollout.metadata.namespace or "", rollout.spec.target.name, outcome).inc()
    fields = {("trigger" if k == "event" else k): v for k, v in decision.log.items()}
    if decision.row is not None or "analysis" in fields:
        log.info(
            "decision",
            rollout=rollout.metadata.name,
            namespace=rollout.metadata.namespace,
            outcome=outcome,
            message=decision.status.message,
            **fields,
        )
    else:
        log.debug("decision", rollout=rollout.metadata.name, outcome=outcome, **fields)
