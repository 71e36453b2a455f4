"""Standard conditions (type/status/reason/message/lastTransitionTime/observedGeneration), pure helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rollout.api.common import Condition, ConditionStatus


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Replace (or add) the condition `type_`; lastTransitionTime moves only when the status changes."""
    old = get_condition(conditions, type_)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def get_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
