"""What a reconcile works with: its dependencies (Context) and the objects of one pass (Snapshot)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rollout.controller.analysis import AnalysisScheduler, Evaluator
from rollout.controller.assess import TargetState
from rollout.controller.caches import Caches
from rollout.controller.grants import Grants
from rollout.controller.metrics import ControllerMetrics
from rollout.controller.rollouts import ControllerDefaults
from rollout.controller.served import ServedClock
from rollout.controller.slim import slimmer
from rollout.controller.views import ObjectKey, TargetView
from rollout.controller.webhooks import WebhookRunner
from rollout.kube.client import KubeClient, Obj
from rollout.kube.events import EventSink, InvolvedObject
from rollout.kube.traffic import TrafficValidator


class Conflict(Exception):
    """An object moved under a write (409): re-read and recompute."""


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class WriteOverlay:
    """The objects our own writes returned, until the informer cache catches up: a cached object whose
    resourceVersion is the one a write of ours replaced is stale, and the write's answer is used instead
    (so the next reconcile does not compute from, and fail a precondition on, what it already changed)."""

    def __init__(self, limit: int = 10000) -> None:
        self._objs: dict[tuple[str, str, str], tuple[str, Obj]] = {}
        self._created: dict[tuple[str, str, str], str] = {}  # objects we created -> the version created
        self.limit = limit

    @staticmethod
    def _key(kind: str, obj: Obj) -> tuple[str, str, str]:
        meta = obj.get("metadata") or {}
        return (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    def note(self, kind: str, replaced_rv: str, obj: Obj) -> None:
        obj = slimmer(kind)(obj)  # kept like the informers keep it (rollout.controller.slim)
        key = self._key(kind, obj)
        self._objs.pop(key, None)
        self._objs[key] = (replaced_rv, obj)
        while len(self._objs) > self.limit:
            self._objs.pop(next(iter(self._objs)))

    def is_echo(self, kind: str, obj: Obj) -> bool:
        """`obj` is the very version one of our writes returned: its informer event is that write's echo,
        which tells the reconcile that wrote it nothing it did not know."""
        found = self._objs.get(self._key(kind, obj))
        return found is not None and _rv(found[1]) == _rv(obj)

    def note_created(self, kind: str, obj: Obj) -> None:
        """A create of ours answered with `obj`: its ADDED event will be that create's echo."""
        key = self._key(kind, obj)
        self._created.pop(key, None)
        self._created[key] = _rv(obj)
        while len(self._created) > self.limit:
            self._created.pop(next(iter(self._created)))

    def is_created_echo(self, kind: str, obj: Obj) -> bool:
        """`obj` is the version one of our creates returned (forgotten once recognised): its ADDED event tells
        the reconcile that created it nothing it did not know."""
        key = self._key(kind, obj)
        if key in self._created and self._created[key] == _rv(obj):
            del self._created[key]
            return True
        return False

    def fresher(self, kind: str, cached: Obj) -> Obj:
        key = self._key(kind, cached)
        found = self._objs.get(key)
        if found is None:
            return cached
        replaced, obj = found
        if _rv(cached) == replaced:
            return obj
        del self._objs[key]  # the cache has moved past our write
        return cached


@dataclass
class Context:
    client: KubeClient
    caches: Caches
    recorder: EventSink
    metrics: ControllerMetrics
    webhooks: WebhookRunner
    validator: TrafficValidator
    defaults: ControllerDefaults = field(default_factory=ControllerDefaults)
    analysis: AnalysisScheduler | None = None
    evaluator: Evaluator | None = None
    enqueue: Callable[[ObjectKey], None] = lambda key: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    field_manager: str = "knative-rollout"
    conflict_attempts: int = 3
    written: WriteOverlay = field(default_factory=WriteOverlay)
    served: ServedClock = field(default_factory=ServedClock)  # fed by the target informers (Controller)
    # targets whose last traffic write Knative's rules refused: key -> (policy, message), for the policy's
    # TargetsManageable condition (the target's next reconcile clears or renews it)
    refused: dict[ObjectKey, tuple[str, str]] = field(default_factory=dict)

    @functools.cached_property
    def grants(self) -> Grants:
        """What the admins allow policies (a policy reaching past it is invalid). Built once: every reconcile
        reads it, and it keys the memo of parsed policies (rollout.controller.assess.policy_view)."""
        return Grants(self.defaults.allow_policy_metric_address, self.webhooks.caller.settings.destinations)


@dataclass
class Snapshot:
    """One target's objects as read for one pass of a reconcile."""

    target_obj: Obj
    view: TargetView
    state: TargetState
    rollout_objs: dict[str, Obj]  # name -> raw object (its resourceVersion is the status precondition)
    configuration: str | None = None  # a standalone Route's Configuration


def target_involved(view: TargetView) -> InvolvedObject:
    return InvolvedObject("serving.knative.dev/v1", view.kind, view.namespace, view.name, view.uid)
