"""What a reconcile works with: its dependencies (Context) and the objects of one pass (Snapshot)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rollout.controller.analysis import AnalysisScheduler, Evaluator
from rollout.controller.assess import TargetState
from rollout.controller.caches import Caches
from rollout.controller.expectations import Expectations
from rollout.controller.grants import Grants
from rollout.controller.metrics import ControllerMetrics
from rollout.controller.notifier import Notifier
from rollout.controller.rollouts import ControllerDefaults
from rollout.controller.served import ServedClock
from rollout.controller.views import ObjectKey, TargetView
from rollout.controller.webhooks import WebhookRunner
from rollout.kube.client import KubeClient, Obj
from rollout.kube.events import EventSink, InvolvedObject
from rollout.kube.traffic import TrafficValidator


class Conflict(Exception):
    """An object moved under a write (409): re-read and recompute."""


@dataclass
class Context:
    client: KubeClient
    caches: Caches
    recorder: EventSink
    metrics: ControllerMetrics
    webhooks: WebhookRunner
    validator: TrafficValidator
    notifier: Notifier | None = None  # None: notifications are not sent (the ledger is not written)
    defaults: ControllerDefaults = field(default_factory=ControllerDefaults)
    analysis: AnalysisScheduler | None = None
    evaluator: Evaluator | None = None
    enqueue: Callable[[ObjectKey], None] = lambda key: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    field_manager: str = "knative-rollout"
    conflict_attempts: int = 3
    expectations: Expectations = field(default_factory=Expectations)  # our own writes (rules there)
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
