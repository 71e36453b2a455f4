"""Which notification events a decision raises, what each says, and the ledger that carries them to their
destinations (status.notifications, rollout.api.notifications). Pure: the controller records the events with
the decision's own status write and settles the ledger from the answers of its senders."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rollout.api.common import format_time
from rollout.api.notifications import (
    CONTROLLER_PREFIX,
    MAX_PENDING,
    Notification,
    NotificationEvent,
    NotificationLedger,
    PendingNotification,
)
from rollout.api.rollout import MetricResult, Phase, Rollout, RolloutStatus, Verdict
from rollout.engine.headline import headline
from rollout.engine.inputs import Decision
from rollout.engine.transitions import Effect
from rollout.engine.units import in_unit, unit_of

E = NotificationEvent
# the event a transition into a finished phase raises
_ENDINGS = {
    Phase.ROLLED_BACK: E.ROLLED_BACK,
    Phase.SUCCEEDED: E.PROMOTED,
    Phase.FAILED: E.FAILED,
    Phase.ABORTED: E.ABORTED,
    Phase.SUPERSEDED: E.SUPERSEDED,
    Phase.UNDONE: E.UNDONE,
}
DeliveryId = tuple[str, str]  # (event id, destination)


@dataclass(frozen=True)
class Delivery:
    """A destination's final answer for one event: delivered, or given up on (and why)."""

    ok: bool
    message: str = ""


def _new_failures(before: RolloutStatus, after: RolloutStatus) -> list[MetricResult]:
    """Metrics that failed in a window this decision analysed, and had not failed in the one before."""
    if after.last_analysis_at is None or after.last_analysis_at == before.last_analysis_at:
        return []
    return [r for r in after.analysis if r.verdict == Verdict.FAIL and r.consecutive_failures == 1]


def events_of(before: RolloutStatus, decision: Decision) -> list[NotificationEvent]:
    """The events of one decision, in the order they happened."""
    row, after = decision.row, decision.status
    events: list[NotificationEvent] = []
    ending = _ENDINGS.get(row.to) if row is not None and row.to != before.phase else None
    if ending is None and _new_failures(before, after):
        events.append(E.REGRESSION_DETECTED)
    if row is None:
        return events
    if row.effect == Effect.START:
        events.append(E.STARTED)
    elif row.effect == Effect.ADVANCE:
        events.append(E.STEP_ADVANCED)
    if row.to == Phase.PAUSED and (before.phase != Phase.PAUSED or row.effect == Effect.ADVANCE):
        events.append(E.PAUSED)
    if ending is not None:
        events.append(ending)
    return events


def _evidence(rollout: Rollout, r: MetricResult) -> dict[str, object]:
    unit = unit_of(rollout.spec.policy.spec, r.name)
    row: dict[str, object] = {
        "metric": r.name,
        "verdict": r.verdict.value,
        "canary": r.value,
        "stable": r.stable_value,
        "unit": unit,
        "canaryText": in_unit(r.value, unit),
        "stableText": in_unit(r.stable_value, unit),
        "canaryRequests": r.canary_requests,
        "stableRequests": r.stable_requests,
        "pValue": r.p_value,
        "dryRun": r.dry_run,
    }
    limit = r.threshold_max if r.threshold_max is not None else r.threshold_min
    if limit is not None:
        row["threshold"] = ("<= " if r.threshold_max is not None else ">= ") + in_unit(limit, unit)
    return {k: v for k, v in row.items() if v is not None}


def event_data(
    after: Rollout, event: NotificationEvent, requested_by: str | None = None
) -> dict[str, object]:
    """The event's data (docs/notifications.md): the rollout as the decision left it, headline first."""
    spec, status = after.spec, after.status
    data: dict[str, object] = {
        "event": event.value,
        "headline": headline(after),
        "rollout": after.metadata.name,
        "namespace": after.metadata.namespace or "",
        "target": {"kind": spec.target.kind, "name": spec.target.name},
        "attempt": spec.attempt,
        "stableRevision": spec.stable_revision,
        "candidateRevision": spec.candidate_revision,
        "phase": status.phase.value,
        "reason": status.reason,
        "message": status.outcome or status.message,
        "step": status.step,
        "canaryWeight": status.canary_weight,
        "stableWeight": status.stable_weight,
        "evidence": [_evidence(after, r) for r in status.analysis],
    }
    if status.paused_for is not None:
        data["pausedFor"] = status.paused_for.value
    if requested_by is not None:
        data["requestedBy"] = requested_by
    return data


def _requester(before: RolloutStatus, decision: Decision) -> str | None:
    """Who asked, when this decision acted on a person's request (the identity the API server verified)."""
    after = decision.status
    if after.handled_request == before.handled_request or not after.requests:
        return None
    return after.requests[-1].requested_by or "unknown"


def recipients(
    event: NotificationEvent, policy: Sequence[Notification], controller: Sequence[Notification]
) -> list[str]:
    """The destinations that want `event`: the policy's by name, the admins' as controller/<name>."""
    names = [n.name for n in policy if n.wants(event)]
    return names + [CONTROLLER_PREFIX + n.name for n in controller if n.wants(event)]


def record(
    before: RolloutStatus,
    decision: Decision,
    after: Rollout,
    now: datetime,
    destinations: Callable[[NotificationEvent], list[str]],
) -> RolloutStatus:
    """The decision's status with its events added to the ledger (those nobody wants are not kept). When the
    ledger is full, the oldest events are given up on, counted in `failed`."""
    events = [(e, destinations(e)) for e in events_of(before, decision)]
    events = [(e, names) for e, names in events if names]
    status = decision.status
    if not events:
        return status
    ledger = status.notifications or NotificationLedger()
    pending = list(ledger.pending)
    sequence = ledger.sequence
    for event, names in events:
        sequence += 1
        data = event_data(after.model_copy(update={"status": status}), event, _requester(before, decision))
        pending.append(
            PendingNotification(id=str(sequence), event=event, at=now, destinations=names, data=data)
        )
    dropped = pending[:-MAX_PENDING] if len(pending) > MAX_PENDING else []
    failed, last = ledger.failed, ledger.last_failure
    if dropped:
        failed += sum(len(p.destinations) for p in dropped)
        last = f"{len(dropped)} event(s) dropped: more than {MAX_PENDING} waited at {format_time(now)}"
    ledger = ledger.model_copy(
        update={
            "sequence": sequence,
            "pending": pending[-MAX_PENDING:],
            "failed": failed,
            "last_failure": last,
        }
    )
    return status.model_copy(update={"notifications": ledger})


def settle(status: RolloutStatus, answers: Mapping[DeliveryId, Delivery]) -> RolloutStatus:
    """The status with answered deliveries taken out of the ledger and counted."""
    ledger = status.notifications
    if ledger is None or not answers:
        return status
    delivered, failed, last = ledger.delivered, ledger.failed, ledger.last_failure
    pending: list[PendingNotification] = []
    for p in ledger.pending:
        left: list[str] = []
        for name in p.destinations:
            answer = answers.get((p.id, name))
            if answer is None:
                left.append(name)
            elif answer.ok:
                delivered += 1
            else:
                failed += 1
                last = f"{p.event.value} to {name}: {answer.message}"[:512]
        if left:
            pending.append(p.model_copy(update={"destinations": left}))
    ledger = ledger.model_copy(
        update={"pending": pending, "delivered": delivered, "failed": failed, "last_failure": last}
    )
    return status.model_copy(update={"notifications": ledger})


def waiting(status: RolloutStatus) -> list[tuple[PendingNotification, str]]:
    """Every (event, destination) still to deliver, oldest first."""
    ledger = status.notifications
    if ledger is None:
        return []
    return [(p, name) for p in ledger.pending for name in p.destinations]
