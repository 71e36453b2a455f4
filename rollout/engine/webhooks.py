"""Which webhooks are due for a rollout right now. The controller (or the simulator) calls them and hands the
results to `decide` by key; completed gates are remembered in status.completedWebhooks."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from rollout.api.policy import RolloutPolicySpec, Webhook, WebhookType
from rollout.api.rollout import TERMINAL_PHASES, Phase, Rollout
from rollout.engine.steps import engine_steps, step_at


@dataclass(frozen=True)
class WebhookCall:
    key: str  # e.g. "preRollout/smoke", "step-2/load-test", "rollback/alarm"
    webhook: Webhook


def webhook_key(webhook: Webhook, step: int | None = None) -> str:
    """The key a call's result is reported and remembered under (status.completedWebhooks)."""
    if webhook.type == WebhookType.STEP:
        return f"step-{step}/{webhook.name}"
    return f"{webhook.type.value}/{webhook.name}"


def key_kind(key: str) -> WebhookType:
    """The kind of hook a key names (the inverse of `webhook_key`)."""
    prefix = key.split("/", 1)[0]
    return WebhookType.STEP if prefix.startswith("step-") else WebhookType(prefix)


# hooks that hold the rollout until they answer 2xx once; a refusal is asked again later
GATE_KINDS = frozenset({WebhookType.PRE_ROLLOUT, WebhookType.STEP, WebhookType.CONFIRM_PROMOTION})


def hooks_waiting(
    policy: RolloutPolicySpec, kind: WebhookType, done: Collection[str], step: int | None = None
) -> list[str]:
    """Keys of the policy's `kind` hooks (at `step`, for step hooks) that have not passed yet."""
    keys = (webhook_key(h, step) for h in policy.webhooks if h.type == kind)
    return [key for key in keys if key not in done]


def due_webhooks(
    rollout: Rollout, candidate_ready: bool, now: datetime, analysis_due: bool
) -> list[WebhookCall]:
    """Calls to make before the next decision. Gate-like hooks (preRollout, step, confirmPromotion) are due
    until they succeed once; rollback hooks are polled at each analysis tick; postRollout once at the end."""
    spec, status = rollout.spec, rollout.status
    policy = spec.policy.spec
    done = set(status.completed_webhooks)
    steps = engine_steps(policy)
    calls: list[WebhookCall] = []
    for hook in policy.webhooks:
        key = webhook_key(hook, status.current_step)
        if key in done:
            continue
        if hook.type == WebhookType.PRE_ROLLOUT:
            due = status.phase == Phase.PENDING and candidate_ready
        elif hook.type == WebhookType.STEP:
            step = step_at(steps, status.current_step)
            due = status.phase == Phase.PROGRESSING and not step.is_gate and status.traffic_applied
        elif hook.type == WebhookType.CONFIRM_PROMOTION:
            due = (
                status.phase == Phase.PROGRESSING
                and status.current_step == len(steps) - 1
                and status.step_started_at is not None
                and (now - status.step_started_at).total_seconds() >= steps[-1].bake
            )
        elif hook.type == WebhookType.ROLLBACK:
            due = analysis_due and status.phase in (Phase.PROGRESSING, Phase.PAUSED)
        else:  # postRollout
            due = status.phase in TERMINAL_PHASES
        if due:
            calls.append(WebhookCall(key, hook))
    return calls
