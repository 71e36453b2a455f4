"""The first half of a reconcile, pure: given what the cluster holds for one target, say what the controller
must do — report a problem, create a Rollout, drive a Rollout through `decide`, or hold the idle traffic.

The I/O half (rollout.controller.reconcile) gathers the state, performs analysis and webhook calls for the
rollout being driven, calls `decide`, and writes what follows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from rollout.api.load import FieldProblem, parse_policy
from rollout.api.policy import RolloutPolicySpec, WebhookType
from rollout.api.rollout import Phase, Rollout
from rollout.controller.grants import Grants, grant_problems
from rollout.controller.layout import ROLLOUT_TAGS, Adopt, Layout, Managed, Unmanageable, Waiting, classify
from rollout.controller.rollouts import (
    CandidateCheck,
    active,
    candidate_to_start,
    check_candidate,
    expired_history,
    is_terminal,
    latest,
    new_rollout,
)
from rollout.controller.views import (
    RevisionView,
    TargetView,
    meta,
    observed_traffic,
    revision_generation,
    revision_state,
)
from rollout.engine.machine import pending_request
from rollout.engine.observations import ObservedTraffic, RevisionState
from rollout.engine.plans import STABLE_TAG, TrafficPlan, pinned
from rollout.engine.transitions import OPTED_OUT_REASON
from rollout.engine.webhooks import webhook_key


@dataclass(frozen=True)
class PolicyView:
    name: str
    namespace: str
    uid: str
    generation: int | None
    spec: RolloutPolicySpec | None
    problems: tuple[FieldProblem, ...] = ()

    def problems_text(self) -> str:
        return "; ".join(str(p) for p in self.problems)


NO_GRANTS = Grants()
_VIEWS: dict[tuple[str, str, Grants], PolicyView] = {}  # (uid, resourceVersion, grant) -> the view parsed
_VIEWS_KEPT = 256


def policy_view(obj: Mapping[str, Any], grants: Grants = NO_GRANTS) -> PolicyView:
    """The policy parsed and validated, and checked against what the admins grant (rollout.controller.grants);
    memoised by uid and resourceVersion (one object version has one content),
    since every reconcile of every target reads its policy."""
    m = meta(obj)
    uid, rv = str(m.get("uid") or ""), str(m.get("resourceVersion") or "")
    memo = (uid, rv, grants)
    known = _VIEWS.get(memo) if uid and rv else None
    if known is not None:
        return known
    parsed, problems = parse_policy(obj)
    if parsed is not None:
        problems = grant_problems(parsed.spec, grants)
        parsed = None if problems else parsed
    gen = m.get("generation")
    view = PolicyView(
        name=str(m.get("name") or ""),
        namespace=str(m.get("namespace") or ""),
        uid=uid,
        generation=int(gen) if isinstance(gen, int) else None,
        spec=parsed.spec if parsed is not None else None,
        problems=tuple(problems),
    )
    if uid and rv:
        if len(_VIEWS) >= _VIEWS_KEPT:
            _VIEWS.pop(next(iter(_VIEWS)))
        _VIEWS[memo] = view
    return view


def strategy_tags(spec: RolloutPolicySpec) -> frozenset[str]:
    """Tags a rollout of this policy may write besides stable/canary/latest."""
    strategy = spec.strategy
    tags: set[str] = set()
    if strategy.blue_green is not None:
        tags.add(strategy.blue_green.preview_tag)
    if strategy.ab_test is not None:
        tags |= {strategy.ab_test.control_tag, strategy.ab_test.treatment_tag}
    return frozenset(tags)


@dataclass(frozen=True)
class TargetState:
    target: TargetView
    policy: PolicyView | None  # None: the policy the label names does not exist
    revisions: Mapping[str, RevisionView]
    rollouts: Sequence[Rollout]
    opted_out: bool = False  # the target no longer carries knrollout.dev/policy (read past the informer)
    route_problem: str | None = None  # a standalone Route that follows no single Configuration: why
    served_since: datetime | None = None  # when the target's served split was first seen (ServedClock)


@dataclass(frozen=True)
class Notice:
    """An Event to record on the target."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Drive:
    """A rollout to pass through `decide` now."""

    rollout: Rollout
    candidate: RevisionState
    traffic: ObservedTraffic
    check: CandidateCheck
    stable_pods: int | None = None  # the stable revision's ready pods (strategy.prewarm sizes from them)


@dataclass(frozen=True)
class Assessment:
    notices: tuple[Notice, ...] = ()
    layout: Layout | None = None
    create: dict[str, Any] | None = None  # a Rollout to create first (then assess again)
    drive: Drive | None = None
    idle: TrafficPlan | None = None  # the traffic to hold while no rollout runs
    adopting: bool = False  # `idle` pins a target for the first time
    expired: tuple[Rollout, ...] = ()  # finished rollouts beyond the policy's historyLimit

    @property
    def unmanageable(self) -> str | None:
        return self.layout.reason if isinstance(self.layout, Unmanageable) else None


def _policy_notices(target: TargetView, policy: PolicyView | None) -> tuple[Notice, ...]:
    if policy is None:
        return (
            Notice(
                "Warning",
                "PolicyNotFound",
                f"label knrollout.dev/policy names RolloutPolicy {target.policy_name!r}, which does not exist "
                f"in namespace {target.namespace}; traffic is left alone",
            ),
        )
    if policy.spec is None:
        return (
            Notice(
                "Warning",
                "PolicyInvalid",
                f"RolloutPolicy {policy.name} is invalid, traffic is left alone: {policy.problems_text()}",
            ),
        )
    return ()


def _policy_changed(policy: PolicyView | None, running: Rollout) -> tuple[Notice, ...]:
    frozen = running.spec.policy
    if policy is None or policy.spec is None or policy.generation in (None, frozen.generation):
        return ()
    return (
        Notice(
            "Normal",
            "PolicyChangedMidRollout",
            f"RolloutPolicy {policy.name} changed (generation {policy.generation}); rollout "
            f"{running.metadata.name} keeps generation {frozen.generation}, which it started with, and the "
            "change applies to the next rollout (`rollout abort` then `rollout retry` applies it now)",
        ),
    )


def _drive(state: TargetState, rollout: Rollout) -> Drive:
    target = state.target
    return Drive(
        rollout=rollout,
        candidate=revision_state(state.revisions, rollout.spec.candidate_revision),
        traffic=replace(observed_traffic(target), since=state.served_since),
        check=check_candidate(rollout, target.latest_created, state.revisions),
        stable_pods=stable.pods if (stable := state.revisions.get(rollout.spec.stable_revision)) else None,
    )


def idle_plan(stable: str, rollouts: Sequence[Rollout]) -> TrafficPlan:
    """What an idle target holds: the final plan of its latest rollout when that rollout left `stable` as
    stable (e.g. a rolled-back candidate parked at 0% under `canary`), else stable pinned at 100%."""
    last = latest(rollouts)
    if last is not None and last.status.traffic:
        plan = TrafficPlan(tuple(last.status.traffic))
        if plan.tags().get(STABLE_TAG) == stable and plan.percents().get(stable) == 100:
            return plan
    return pinned(stable)


def history_limit(state: TargetState) -> int:
    """How many finished rollouts the target keeps: its policy's historyLimit, else (policy missing or
    invalid) the one its newest rollout froze."""
    policy = state.policy
    if policy is not None and policy.spec is not None:
        return policy.spec.history_limit
    newest = active(state.rollouts) or latest(state.rollouts)
    return newest.spec.policy.spec.history_limit if newest is not None else 10


def settled(rollout: Rollout) -> bool:
    """A finished rollout is settled once Knative serves its final plan (status.trafficApplied), its
    postRollout webhooks have been called, and a failed candidate has left the route (it stays parked
    under `canary` until status.candidateKeptUntil); until then the controller keeps deciding it."""
    if not is_terminal(rollout):
        return False
    hooks = [webhook_key(h) for h in rollout.spec.policy.spec.webhooks if h.type == WebhookType.POST_ROLLOUT]
    done = set(rollout.status.completed_webhooks)
    status = rollout.status
    return status.traffic_applied and all(k in done for k in hooks) and status.candidate_kept_until is None


def _opted_out(state: TargetState) -> Assessment:
    """The target dropped its knrollout.dev/policy label: a running rollout is decided once more with
    `opted_out` (it ends Aborted/OptedOut on stable alone: the last traffic write), and the rollout that
    ended so is decided again until Knative serves that (without writing traffic). Nothing else: the
    target's traffic is the user's again."""
    running = active(state.rollouts)
    if running is not None:
        return Assessment(drive=_drive(state, running))
    last = latest(state.rollouts)
    if last is not None and last.status.reason == OPTED_OUT_REASON and not settled(last):
        return Assessment(drive=_drive(state, last))
    return Assessment()


def assess(state: TargetState) -> Assessment:
    if state.opted_out:
        return _opted_out(state)
    target, policy = state.target, state.policy
    notices = _policy_notices(target, policy)
    valid_spec = policy.spec if policy is not None else None
    running = active(state.rollouts)
    expired = tuple(expired_history(state.rollouts, history_limit(state)))
    if running is not None:
        # a running rollout follows the policy it froze at its start, whatever happened to the policy since;
        # whoever changed the policy is told so
        notices = (*notices, *_policy_changed(policy, running))
        return Assessment(notices=notices, drive=_drive(state, running), expired=expired)
    last = latest(state.rollouts)
    if last is not None and pending_request(last) is not None:
        return Assessment(notices=notices, drive=_drive(state, last), expired=expired)
    if valid_spec is None or policy is None:
        return Assessment(notices=notices, expired=expired)
    if state.route_problem is not None:
        notice = Notice("Warning", "UnmanageableTraffic", state.route_problem)
        return Assessment(
            notices=(*notices, notice), layout=Unmanageable(state.route_problem), expired=expired
        )
    layout = classify(target, ROLLOUT_TAGS | strategy_tags(valid_spec))
    if isinstance(layout, Unmanageable):
        notice = Notice("Warning", "UnmanageableTraffic", f"{layout.reason}; traffic is left alone")
        return Assessment(notices=(*notices, notice), layout=layout, expired=expired)
    if isinstance(layout, Waiting):
        return Assessment(notices=notices, layout=layout, expired=expired)
    assert isinstance(layout, Managed | Adopt)
    stable = layout.stable
    candidate = candidate_to_start(stable, target.latest_created, state.revisions, state.rollouts)
    if candidate is not None:
        body = new_rollout(
            target,
            stable,
            candidate,
            policy.name,
            policy.generation,
            valid_spec,
            revision_generation(candidate, state.revisions),
        )
        return Assessment(notices=notices, layout=layout, create=body, expired=expired)
    idle = idle_plan(stable, state.rollouts)
    undone = last is not None and last.status.phase == Phase.UNDONE
    if last is not None and not settled(last) and (undone or TrafficPlan(tuple(last.status.traffic)) == idle):
        # (An undo's plan is authoritative until served, though spec.traffic still names the promoted revision
        # as stable: the traffic write may not have happened yet.)
        # The latest rollout finished but Knative does not serve its final plan yet (or its postRollout
        # webhooks are due): decide it again — which holds that plan, like `idle` would, and records in its
        # status when it is served — until it is settled; then the target is left alone.
        return Assessment(notices=notices, layout=layout, drive=_drive(state, last), expired=expired)
    return Assessment(
        notices=notices,
        layout=layout,
        idle=idle,
        adopting=isinstance(layout, Adopt),
        expired=expired,
    )
