"""reconcile(policy): the RolloutPolicy's own status — `Valid` (with every field problem, naming the field and
the fix) and `TargetsManageable` (naming the targets whose traffic layout the policy cannot manage) — written
through /status when it changes, with a PolicyInvalid Event on the policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rollout.api.common import Condition
from rollout.api.policy import RolloutPolicyStatus
from rollout.controller.assess import PolicyView, policy_view, strategy_tags
from rollout.controller.context import Context
from rollout.controller.layout import ROLLOUT_TAGS, Unmanageable, classify
from rollout.controller.routes import cached_configuration_of, route_configuration
from rollout.controller.views import ObjectKey, target_view
from rollout.engine.conditions import set_condition
from rollout.kube.client import KubeError
from rollout.kube.events import involved
from rollout.kube.resources import POLICIES
from rollout.kube.status import write_status

VALID = "Valid"
MANAGEABLE = "TargetsManageable"


def policy_conditions(
    policy: PolicyView,
    current: Sequence[Condition],
    unmanageable: Sequence[tuple[str, str]],
    now: datetime,
) -> list[Condition]:
    """Pure: the policy's conditions. `unmanageable` lists (target, reason)."""
    gen = policy.generation
    if policy.spec is None:
        conds = set_condition(
            current, VALID, "False", "PolicyInvalid", policy.problems_text()[:4096], now, gen
        )
    else:
        conds = set_condition(current, VALID, "True", "PolicyValid", "the policy is valid", now, gen)
    if unmanageable:
        message = "; ".join(f"{name}: {reason}" for name, reason in unmanageable)
        conds = set_condition(conds, MANAGEABLE, "False", "UnmanageableTraffic", message[:4096], now, gen)
    else:
        conds = set_condition(
            conds, MANAGEABLE, "True", "AllManageable", "every target's traffic can be managed", now, gen
        )
    return conds


def unmanageable_targets(ctx: Context, policy: PolicyView) -> list[tuple[str, str]]:
    tags = ROLLOUT_TAGS | (strategy_tags(policy.spec) if policy.spec is not None else frozenset())
    found = []
    for obj in ctx.caches.targets_of_policy(policy.namespace, policy.name):
        view = target_view(obj)
        if view.key in ctx.refused:
            found.append((f"{view.kind} {view.name}", ctx.refused[view.key][1]))
            continue
        if ctx.caches.has_active_rollout(view.key):
            continue
        if view.kind == "Route":
            route = route_configuration(
                view.spec_traffic, cached_configuration_of(ctx.caches, view.namespace)
            )
            if route.problem is not None:
                found.append((f"{view.kind} {view.name}", route.problem))
                continue
        layout = classify(view, tags)
        if isinstance(layout, Unmanageable):
            found.append((f"{view.kind} {view.name}", layout.reason))
    return sorted(found)


class PolicyReconciler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def reconcile(self, key: ObjectKey) -> float | None:
        ctx = self.ctx
        obj = ctx.caches.policies.get(key.namespace, key.name)
        if obj is None:
            return None
        policy = policy_view(obj, ctx.grants)
        status = obj.get("status") or {}
        current = [Condition.model_validate(c) for c in status.get("conditions") or () if _is_condition(c)]
        conds = policy_conditions(policy, current, unmanageable_targets(ctx, policy), ctx.clock())
        new = RolloutPolicyStatus(observed_generation=policy.generation, conditions=conds).to_wire()
        try:
            await write_status(ctx.client, POLICIES, obj, new)
        except KubeError as exc:
            if exc.conflict:
                return 0.5  # the policy moved: the next pass reads the new one
            raise
        if policy.spec is None:
            await ctx.recorder.record(
                involved(obj), "Warning", "PolicyInvalid", f"the policy is invalid: {policy.problems_text()}"
            )
        return None


def _is_condition(c: Any) -> bool:
    return isinstance(c, dict) and {"type", "status", "reason", "lastTransitionTime"} <= c.keys()
