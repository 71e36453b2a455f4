"""What `decide` takes and returns. Plain frozen values; the controller and the simulator build them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollout.api.rollout import MetricResult, Rollout, RolloutStatus
from rollout.engine.observations import ObservedTraffic, RevisionState
from rollout.engine.plans import TrafficPlan
from rollout.engine.transitions import Event, Row


@dataclass(frozen=True)
class AnalysisUpdate:
    """A fresh evaluation of the policy's metrics over one window (see rollout.engine.analysis)."""

    window_end: datetime
    results: tuple[MetricResult, ...]
    judge_state: Mapping[str, Any]
    failed: tuple[str, ...] = ()  # deciding metrics that call for a rollback, each with its reason in results
    summary: str = ""
    data_window: tuple[datetime, datetime] | None = None  # the span the measurements cover, when known


@dataclass(frozen=True)
class WebhookResult:
    ok: bool
    status_code: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Inputs:
    now: datetime
    rollout: Rollout
    candidate: RevisionState
    stable_pods: int | None = None  # the stable revision's ready pods; None: not reported
    traffic: ObservedTraffic | None = None
    analysis: AnalysisUpdate | None = None
    superseded_by: str | None = None  # a newer revision that replaces the candidate
    template_reverted: bool = False  # the template is back to the stable revision's configuration
    opted_out: bool = False  # the target no longer carries knrollout.dev/policy
    webhooks: Mapping[str, WebhookResult] = field(default_factory=dict)  # key -> result, for due calls
    webhooks_pending: tuple[str, ...] = ()  # keys of calls started and not answered yet


@dataclass(frozen=True)
class RecordEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class RetryRollout:
    """Start attempt `attempt` for the same stable and candidate revisions."""

    attempt: int


Action = RecordEvent | RetryRollout


@dataclass(frozen=True)
class Decision:
    status: RolloutStatus
    plan: TrafficPlan  # the traffic this rollout wants now (the controller writes it if spec differs)
    actions: tuple[Action, ...] = ()
    event: Event | None = None  # the event that fired, if any
    row: Row | None = None  # the transition taken, if any
    log: Mapping[str, Any] = field(default_factory=dict)  # the numbers behind the decision, for the logs
