"""The writes a reconcile makes, each with its precondition, its Event and its log line."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import structlog

from rollout.api.rollout import TERMINAL_PHASES, Rollout, RolloutStatus
from rollout.controller.assess import Notice, strategy_tags
from rollout.controller.context import Conflict, Context, Snapshot, target_involved
from rollout.controller.layout import ROLLOUT_TAGS
from rollout.controller.views import ObjectKey, TargetView, entries_summary
from rollout.engine import notices
from rollout.engine.plans import TrafficPlan
from rollout.kube.client import KubeError, Obj
from rollout.kube.events import involved
from rollout.kube.resources import ROLLOUTS
from rollout.kube.revisions import write_min_scale
from rollout.kube.status import write_status
from rollout.kube.traffic import InvalidTraffic, KnativeTraffic, desired_block

log = structlog.get_logger(__name__)


class Effects:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def notices(self, view: TargetView, notices: Sequence[Notice]) -> None:
        for n in notices:
            await self.ctx.recorder.record(target_involved(view), n.type, n.reason, n.message)

    async def create_rollout(
        self, view: TargetView, body: Obj, reason: str, message: str
    ) -> tuple[Obj, bool]:
        """Create: the Rollout, and whether this call created it (AlreadyExists means a previous attempt did:
        the existing one is returned)."""
        ctx = self.ctx
        name = body["metadata"]["name"]
        try:
            created = await ctx.client.create(ROLLOUTS, view.namespace, body)
        except KubeError as exc:
            if not exc.already_exists:
                raise
            existing = await ctx.client.get(ROLLOUTS, view.namespace, name)
            if existing is None:
                raise Conflict(f"rollout {name} existed and is gone") from None
            return existing, False
        created.setdefault("kind", "Rollout")
        created.setdefault("apiVersion", "knrollout.dev/v1alpha1")
        await ctx.recorder.record(target_involved(view), "Normal", reason, message)
        await ctx.recorder.record(involved(created), "Normal", reason, message)
        log.info("rollout created", rollout=name, target=view.name, namespace=view.namespace, reason=reason)
        return created, True

    async def expire(self, rollouts: Sequence[Rollout]) -> None:
        for r in rollouts:
            try:
                await self.ctx.client.delete(ROLLOUTS, r.metadata.namespace, r.metadata.name)
            except KubeError as exc:
                log.warning("could not delete an old Rollout", rollout=r.metadata.name, error=str(exc))

    def traffic_target(self, snap: Snapshot) -> KnativeTraffic:
        v = snap.view
        return KnativeTraffic(
            self.ctx.client,
            v.kind,
            v.namespace,
            v.name,
            validator=self.ctx.validator,
            configuration=snap.configuration,
        )

    def desired_traffic(
        self, snap: Snapshot, plan: TrafficPlan, rollout: Rollout | None
    ) -> list[dict[str, Any]]:
        """The plan, plus the entries users added — minus the arms of the policy's strategy (the plan writes
        them while they are in use, and a finished A/B test must not leave its `control` arm forever)."""
        tags: frozenset[str] = strategy_tags(rollout.spec.policy.spec) if rollout is not None else frozenset()
        policy = snap.state.policy
        if policy is not None and policy.spec is not None:
            tags |= strategy_tags(policy.spec)
        return desired_block(plan, snap.view.spec_traffic, snap.configuration, tags - ROLLOUT_TAGS)

    async def write_traffic(self, snap: Snapshot, entries: list[dict[str, Any]]) -> Obj | None:
        """Write spec.traffic; None when Knative's rules refuse the block: then nothing is sent, the target
        is reported unmanageable (Event, and its policy's TargetsManageable condition) and left as it is."""
        try:
            obj = await self.traffic_target(snap).write(entries, snap.view.resource_version)
        except InvalidTraffic as exc:
            await self._refused(snap, str(exc))
            return None
        except KubeError as exc:
            if exc.conflict:
                self.ctx.metrics.traffic_writes.labels("conflict").inc()
                raise Conflict(f"traffic of {snap.view.kind} {snap.view.name}: {exc.message}") from None
            raise
        self.ctx.expectations.note_written(snap.view.kind, snap.view.resource_version, obj)
        self.ctx.metrics.traffic_writes.labels("written").inc()
        log.info(
            "traffic written",
            target=snap.view.name,
            namespace=snap.view.namespace,
            traffic=entries_summary(entries),
        )
        return obj

    async def _refused(self, snap: Snapshot, problem: str) -> None:
        view = snap.view
        message = (
            f"the traffic the controller would write breaks Knative's rules, so it is left alone: {problem}"
        )
        self.ctx.refused[view.key] = (view.policy_name or "", message)
        self.ctx.metrics.traffic_writes.labels("refused").inc()
        await self.ctx.recorder.record(target_involved(view), "Warning", "UnmanageableTraffic", message)
        if view.policy_name:
            self.ctx.enqueue(ObjectKey("RolloutPolicy", view.namespace, view.policy_name))
        log.warning("traffic write refused", target=view.name, namespace=view.namespace, problem=problem)

    async def deliver_notifications(self, key: ObjectKey, snap: Snapshot, skip: Collection[str]) -> None:
        """The ledgers of the target's rollouts this pass did not decide (finished ones, or one superseded
        beside its successor): write the deliveries that answered, start those that wait."""
        notifier = self.ctx.notifier
        if notifier is None:
            return
        for rollout in snap.state.rollouts:
            if rollout.metadata.name in skip or not notices.waiting(rollout.status):
                continue
            answered = notifier.answers(rollout)
            status = rollout.status
            if answered:
                status = notices.settle(status, answered)
                await self.write_rollout_status(snap.rollout_objs[rollout.metadata.name], status)
                notifier.acknowledge(rollout, answered)
            notifier.send(key, rollout, status)

    async def hold_min_scale(self, snap: Snapshot, rollout: Rollout | None) -> None:
        """Make the target's Revisions carry the pre-warm hold the rollout's status asks for (its candidate
        only, while it runs) and no other (rollout.knative.minscale): a hold left by a superseded candidate or
        by a controller killed before it could restore one is undone here. A failed write is logged and
        tried again at the next pass; it never stops the decision."""
        held = None
        if rollout is not None and rollout.status.phase not in TERMINAL_PHASES:
            held = (rollout.spec.candidate_revision, rollout.status.prewarm_pods)
        for rev in snap.state.revisions.values():
            want = held[1] if held is not None and rev.name == held[0] else None
            patch = rev.min_scale.patch(want)
            if patch is None:
                continue
            try:
                await write_min_scale(self.ctx.client, rev.namespace, rev.name, patch)
            except KubeError as exc:
                self.ctx.metrics.min_scale_writes.labels("failed").inc()
                hint = (
                    "grant patch on serving.knative.dev revisions (the chart does), or set strategy.prewarm: false"
                    if exc.status in (401, 403)
                    else "tried again at the next pass"
                )
                log.warning(
                    "could not set the revision's min-scale",
                    revision=rev.name,
                    namespace=rev.namespace,
                    min_scale=want,
                    error=str(exc),
                    hint=hint,
                )
                continue
            self.ctx.metrics.min_scale_writes.labels("held" if want is not None else "restored").inc()
            log.info(
                "revision min-scale held" if want is not None else "revision min-scale restored",
                revision=rev.name,
                namespace=rev.namespace,
                min_scale=want if want is not None else rev.min_scale.own,
            )

    async def write_rollout_status(self, raw: Obj, status: RolloutStatus) -> Obj | None:
        try:
            written = await write_status(self.ctx.client, ROLLOUTS, raw, status.to_wire())
        except KubeError as exc:
            if exc.conflict:
                name = (raw.get("metadata") or {}).get("name")
                raise Conflict(f"status of rollout {name}: {exc.message}") from None
            raise
        if written is not None:
            self.ctx.expectations.note_written(
                "Rollout", str((raw.get("metadata") or {}).get("resourceVersion") or ""), written
            )
        return written
