"""reconcile(target): read what the cluster holds for one Service/Route, `assess` it, and carry out the
outcome — record problems, create the Rollout a new revision needs, drive the running Rollout through
`decide` (rollout.controller.drive), or hold the idle traffic. Level-triggered and idempotent: everything is
recomputed from cluster state at each call; a 409 re-reads the objects from the API server and recomputes
(never a blind retry)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import structlog

from rollout.api.rollout import Rollout
from rollout.controller.assess import (
    Assessment,
    TargetState,
    assess,
    history_limit,
    policy_view,
    settled,
)
from rollout.controller.caches import BY_CONFIGURATION, BY_SERVICE
from rollout.controller.context import Conflict, Context, Snapshot, target_involved
from rollout.controller.drive import Carry, DriveOutcome, drive
from rollout.controller.effects import Effects
from rollout.controller.layout import Adopt, same_traffic
from rollout.controller.parsed import RolloutParser
from rollout.controller.rollouts import TARGET_KIND_LABEL, TARGET_LABEL, active, expired_history
from rollout.controller.routes import RouteConfiguration, cached_configuration_of, route_configuration
from rollout.controller.views import (
    ObjectKey,
    RevisionView,
    TargetView,
    entries_summary,
    observed_traffic,
    revision_view,
    target_view,
)
from rollout.engine import notices
from rollout.kube.client import Obj
from rollout.kube.resources import CONFIGURATIONS, ROLLOUTS, ROUTES, SERVICES

log = structlog.get_logger(__name__)
OPTED_OUT_POLL = 1.0  # seconds between looks at an opted-out target whose last rollout is not settled


def _parse_rollouts(parser: RolloutParser, objs: list[Obj]) -> tuple[list[Rollout], dict[str, Obj]]:
    parsed: list[Rollout] = []
    raw: dict[str, Obj] = {}
    for obj in objs:
        rollout, problems = parser.parse(obj)
        if rollout is None:
            name = (obj.get("metadata") or {}).get("name")
            log.warning("unreadable Rollout skipped", name=name, problems=[str(p) for p in problems][:3])
            continue
        parsed.append(rollout)
        raw[rollout.metadata.name] = obj
    return parsed, raw


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


class TargetReconciler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.fx = Effects(ctx)

    async def reconcile(self, key: ObjectKey) -> float | None:
        """Seconds after which to look again (None: when something changes)."""
        refused = self.ctx.refused.pop(key, None)
        try:
            return await self._reconcile(key)
        finally:
            if refused is not None and key not in self.ctx.refused and refused[0]:
                # no longer refused: its policy's TargetsManageable condition forgets it
                self.ctx.enqueue(ObjectKey("RolloutPolicy", key.namespace, refused[0]))

    async def _reconcile(self, key: ObjectKey) -> float | None:
        extra: list[Obj] = []  # Rollouts created in this reconcile, before the cache has them
        carry = Carry()
        for attempt in range(self.ctx.conflict_attempts):
            try:
                snap = await self._read(key, fresh=attempt > 0, extra=extra)
                if snap is None:
                    return None
                return await self._once(key, snap, extra, carry)
            except Conflict as exc:
                log.info("conflict, re-reading", key=str(key), attempt=attempt + 1, detail=str(exc))
        return 1.0

    # --- reading ---------------------------------------------------------------------------------------

    async def _read(self, key: ObjectKey, *, fresh: bool, extra: list[Obj]) -> Snapshot | None:
        """The target's objects: from the informer caches, or (after a conflict) from the API server."""
        ctx = self.ctx
        obj = await self._get_target(key) if fresh else ctx.caches.target(key)
        if obj is None and not fresh and self._unsettled(key):
            # Not among the labelled targets the informer holds, yet its rollouts need a decision: read it
            # from the API server, to tell an opted-out target (label removed) from a deleted one.
            obj = await self._get_target(key)
        elif obj is not None and not fresh:
            obj = ctx.expectations.fresher(key.kind, obj)
        if obj is None:
            return None
        obj.setdefault("kind", key.kind)
        view = target_view(obj)
        opted_out = view.policy_name is None
        if opted_out and not self._unsettled(key):
            return None
        policy_obj = ctx.caches.policies.get(key.namespace, view.policy_name) if view.policy_name else None
        if fresh:
            listed, _ = await ctx.client.list(
                ROLLOUTS, key.namespace, label_selector=f"{TARGET_LABEL}={key.name}"
            )
            objs = [
                o
                for o in listed
                if ((o.get("metadata") or {}).get("labels") or {}).get(TARGET_KIND_LABEL, "Service")
                == key.kind
            ]
        else:
            objs = [ctx.expectations.fresher("Rollout", o) for o in ctx.caches.rollouts_of(key)]
        known = {_name(o) for o in objs}
        objs += [o for o in extra if _name(o) not in known]
        rollouts, raw = _parse_rollouts(ctx.caches.parser, objs)
        route = RouteConfiguration(None)
        if key.kind == "Service":
            revs = ctx.caches.revisions.by_index(BY_SERVICE, f"{key.namespace}/{key.name}")
        else:
            revs, route, view = await self._route_revisions(view, rollouts)
        revisions: Mapping[str, RevisionView] = {r.name: r for r in map(revision_view, revs)}
        policy = policy_view(policy_obj, ctx.grants) if policy_obj is not None else None
        state = TargetState(
            view,
            policy,
            revisions,
            rollouts,
            opted_out=opted_out,
            route_problem=route.problem,
            served_since=ctx.served.since(key, observed_traffic(view)),
        )
        return Snapshot(obj, view, state, raw, route.name)

    async def _get_target(self, key: ObjectKey) -> Obj | None:
        """The target from the API server (each resource named at its call site, for the RBAC scan)."""
        if key.kind == "Service":
            return await self.ctx.client.get(SERVICES, key.namespace, key.name)
        return await self.ctx.client.get(ROUTES, key.namespace, key.name)

    def _unsettled(self, key: ObjectKey) -> bool:
        """The target has a rollout (in the cache) that is running, finished but not settled, or has
        notifications still to deliver."""
        rollouts, _ = _parse_rollouts(self.ctx.caches.parser, self.ctx.caches.rollouts_of(key))
        return any(not settled(r) or notices.waiting(r.status) for r in rollouts)

    async def _route_revisions(
        self, view: TargetView, rollouts: Sequence[Rollout]
    ) -> tuple[list[Obj], RouteConfiguration, TargetView]:
        """A standalone Route's Configuration (rollout.controller.routes), its revisions, and its latest
        created/ready revision as the Route's own."""
        ns = view.namespace
        running = active(rollouts)
        route = route_configuration(
            view.spec_traffic,
            cached_configuration_of(self.ctx.caches, ns),
            (running.spec.candidate_revision, running.spec.stable_revision) if running is not None else (),
        )
        if route.name is None:
            return [], route, view
        revs = self.ctx.caches.revisions.by_index(BY_CONFIGURATION, f"{ns}/{route.name}")
        cfg = await self.ctx.client.get(CONFIGURATIONS, ns, route.name)
        status = (cfg or {}).get("status") or {}
        view = replace(
            view,
            latest_created=status.get("latestCreatedRevisionName") or None,
            latest_ready=status.get("latestReadyRevisionName") or None,
        )
        return revs, route, view

    # --- one pass --------------------------------------------------------------------------------------

    async def _once(self, key: ObjectKey, snap: Snapshot, extra: list[Obj], carry: Carry) -> float | None:
        ctx, fx = self.ctx, self.fx
        a = assess(snap.state)
        if snap.state.opted_out:
            return await self._drive_opted_out(key, snap, a, carry)
        await fx.notices(snap.view, a.notices)
        if a.unmanageable or any(n.reason == "PolicyInvalid" for n in a.notices):
            ctx.enqueue(ObjectKey("RolloutPolicy", key.namespace, snap.view.policy_name or ""))
        if a.create is not None:
            spec = a.create["spec"]
            message = (
                f"Rollout {a.create['metadata']['name']} started: revision {spec['candidateRevision']} against "
                f"stable {spec['stableRevision']} (policy {spec['policy']['name']}, "
                f"generation {spec['policy'].get('generation')})"
            )
            created, fresh = await fx.create_rollout(snap.view, a.create, "RolloutStarted", message)
            extra.append(created)
            snap = await self._read(key, fresh=False, extra=extra) or snap
            a = assess(snap.state)
            if fresh and a.drive is not None and a.drive.rollout.metadata.name == _name(created):
                # driven below, in this pass (status, then traffic): the create's ADDED event is its echo
                self.ctx.expectations.note_created("Rollout", created)
        await fx.expire(a.expired)
        gone = {r.metadata.name for r in a.expired}
        if a.drive is not None:
            driven = a.drive.rollout.metadata.name
            outcome = await drive(fx, key, snap, a.drive, snap.rollout_objs[driven], carry)
            await fx.hold_min_scale(snap, outcome.after)
            extra.extend(outcome.created)
            if outcome.finished or outcome.created:
                expired = self._expired_now(snap, outcome, a.expired)
                await fx.expire(expired)
                gone |= {r.metadata.name for r in expired}
            await fx.deliver_notifications(key, snap, skip=gone | {driven})
            return outcome.requeue_after
        if a.idle is not None:
            await self._hold_idle(snap, a)
        await fx.hold_min_scale(snap, None)
        await fx.deliver_notifications(key, snap, skip=gone)
        return None

    async def _drive_opted_out(
        self, key: ObjectKey, snap: Snapshot, a: Assessment, carry: Carry
    ) -> float | None:
        driven = a.drive.rollout.metadata.name if a.drive is not None else None
        await self.fx.deliver_notifications(key, snap, skip={driven} if driven else set())
        if a.drive is None:
            return None
        raw = snap.rollout_objs[a.drive.rollout.metadata.name]
        outcome = await drive(self.fx, key, snap, a.drive, raw, carry)
        await self.fx.hold_min_scale(snap, outcome.after)
        if outcome.finished:
            log.warning(
                "target opted out mid-rollout",
                target=key.name,
                namespace=key.namespace,
                kind=key.kind,
                rollout=outcome.after.metadata.name,
            )
        # no informer event will come for a target without the label: look again soon until settled
        return None if outcome.requeue_after is None else min(outcome.requeue_after, OPTED_OUT_POLL)

    def _expired_now(
        self, snap: Snapshot, outcome: DriveOutcome, deleted: Sequence[Rollout]
    ) -> list[Rollout]:
        """History beyond the limit once this decision is counted: a rollout that just finished (or a retry
        that just started) may push the oldest finished one out now, not at some later reconcile."""
        after = outcome.after
        rollouts = [after if r.metadata.name == after.metadata.name else r for r in snap.state.rollouts]
        rollouts += _parse_rollouts(self.ctx.caches.parser, outcome.created)[0]
        gone = {r.metadata.name for r in deleted}
        state = replace(snap.state, rollouts=rollouts)
        return [r for r in expired_history(rollouts, history_limit(state)) if r.metadata.name not in gone]

    async def _hold_idle(self, snap: Snapshot, a: Assessment) -> None:
        assert a.idle is not None
        if active(snap.state.rollouts) is not None:
            return
        desired = self.fx.desired_traffic(snap, a.idle, None)
        if same_traffic(snap.view.spec_traffic, desired):
            return
        if await self.fx.write_traffic(snap, desired) is None:
            return
        if isinstance(a.layout, Adopt):
            await self.ctx.recorder.record(
                target_involved(snap.view),
                "Normal",
                "TrafficPinned",
                f"pinned spec.traffic to explicit revisions: {entries_summary(desired)}",
            )
