"""Rollout (knrollout.dev/v1alpha1): the record of one attempt to move one Service from one stable revision to
one candidate revision. Written by the controller only; people act on it through `spec.request`
(`rollout promote|abort|pause|resume|retry`), which the controller acknowledges in `status.handledRequest`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from rollout.api.common import API_VERSION, ApiModel, Condition, MicroTime, Time
from rollout.api.notifications import NotificationLedger
from rollout.api.policy import ObjectMeta, RolloutPolicySpec


class Phase(StrEnum):
    PENDING = "Pending"  # waiting for the candidate to be Ready (and pre-rollout webhooks)
    PROGRESSING = "Progressing"  # at a step, analysing
    PAUSED = "Paused"  # why: status.pausedFor
    PROMOTING = "Promoting"  # candidate being switched to 100% and made stable
    SUCCEEDED = "Succeeded"  # candidate is the new stable
    ROLLED_BACK = "RolledBack"  # analysis showed a regression; stable at 100%
    FAILED = "Failed"  # deadline, unready candidate, failed pre-rollout webhook
    ABORTED = "Aborted"  # a person aborted; stable at 100%
    SUPERSEDED = "Superseded"  # a newer revision arrived; a new Rollout took over
    UNDONE = "Undone"  # promoted, then a person put traffic back on the previous stable (status.undoneTo)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset(
    {Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED, Phase.ABORTED, Phase.SUPERSEDED, Phase.UNDONE}
)


class PausedFor(StrEnum):
    """Why a Paused rollout waits (status.pausedFor), set by the transition that paused it."""

    GATE = "Gate"  # a manual gate step: `rollout resume` or the gate's duration opens it
    REQUEST = "Request"  # a person paused it: `rollout resume` continues
    DEADLINE = "Deadline"  # deadlines.rollout passed with onRolloutDeadline: pause
    INCONCLUSIVE = "Inconclusive"  # the decisive step ended inconclusive with onInconclusive: hold


# the reason of the transition that paused a rollout, for status written before status.pausedFor existed
_LEGACY_PAUSE_REASONS = {
    "ManualGate": PausedFor.GATE,
    "InconclusiveHold": PausedFor.INCONCLUSIVE,
    "RolloutDeadlineExceeded": PausedFor.DEADLINE,
}


class RequestAction(StrEnum):
    PROMOTE = "promote"  # skip the remaining steps and gates and promote now (a person's decision)
    ABORT = "abort"  # stable back to 100%, final
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"  # on a finished rollout: start a new attempt for the same candidate
    UNDO = "undo"  # on a promoted rollout: traffic back on the previous stable (or `revision`) at once


class ManualRequest(ApiModel):
    action: RequestAction
    id: str = Field(
        min_length=1, max_length=64, description="Unique id; the controller acts on each id once."
    )
    requested_at: Time
    requested_by: str = Field(default="", max_length=253, description="Who asked (user name, tool).")
    reason: str = Field(default="", max_length=1024)
    revision: str | None = Field(
        default=None,
        max_length=253,
        description="undo only: the Ready revision to serve instead of the rollout's previous stable.",
    )


REQUEST_HISTORY = 20  # handled manual requests kept in status.requests


class HandledRequest(ApiModel):
    """A manual request the controller acted on or ignored, as recorded in status.requests."""

    action: RequestAction
    id: str = Field(min_length=1, max_length=64)
    requested_at: Time | None = None
    requested_by: str = Field(
        default="",
        max_length=253,
        description="Who asked: the identity the API server authenticated for the CLI (SelfSubjectReview), "
        "or a local user name marked unverified.",
    )
    reason: str = Field(default="", max_length=1024)
    outcome: Literal["Applied", "Ignored"] = Field(description="Acted on, or refused as not applicable.")
    handled_at: Time | None = None


class TargetRef(ApiModel):
    api_version: Literal["serving.knative.dev/v1"] = "serving.knative.dev/v1"
    kind: Literal["Service", "Route"] = "Service"
    name: str = Field(min_length=1, max_length=253)


class PolicyRef(ApiModel):
    name: str = Field(min_length=1, max_length=253)
    generation: int | None = Field(default=None, description="Policy generation the rollout started from.")
    hash: str = Field(description="sha256 of the resolved policy spec.")
    spec: RolloutPolicySpec = Field(
        description="The policy as resolved at the start; a policy edit does not change a running rollout."
    )


class RolloutSpec(ApiModel):
    target: TargetRef = Field(description="The Knative Service (or standalone Route) whose traffic moves.")
    stable_revision: str = Field(
        min_length=1, max_length=253, description="Revision serving 100% when the rollout started."
    )
    candidate_revision: str = Field(min_length=1, max_length=253, description="Revision being rolled out.")
    policy: PolicyRef = Field(description="The policy this rollout follows, frozen at its start.")
    attempt: int = Field(default=1, ge=1, description="1 for the first attempt; `retry` creates the next.")
    request: ManualRequest | None = Field(default=None, description="The latest manual request.")


class TrafficEntry(ApiModel):
    """One entry of the traffic split as the controller planned or observed it."""

    revision_name: str | None = None
    latest_revision: bool | None = None
    tag: str | None = None
    percent: int = Field(default=0, ge=0, le=100)


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    NO_DATA = "NoData"
    ERROR = "Error"


class MetricResult(ApiModel):
    """The latest verdict of one metric, with the numbers behind it."""

    name: str
    verdict: Verdict
    dry_run: bool = False
    value: float | None = Field(default=None, description="Candidate's value in the last interval.")
    stable_value: float | None = Field(default=None, description="Stable's value in the last interval.")
    threshold_min: float | None = None
    threshold_max: float | None = None
    canary_requests: int | None = Field(default=None, description="Candidate requests in the last interval.")
    stable_requests: int | None = None
    consecutive_failures: int = 0
    total_failures: int = 0
    consecutive_errors: int = 0
    # sequential comparison
    log_evidence: float | None = Field(default=None, description="log of the test martingale (regression).")
    p_value: float | None = Field(default=None, description="Anytime-valid p-value for 'no regression'.")
    ratio_upper: float | None = Field(default=None, description="Upper confidence bound of canary/stable.")
    ratio_lower: float | None = None
    no_worse: bool | None = Field(default=None, description="Evidence shows the candidate is no worse.")
    message: str = ""
    measured_at: Time | None = Field(default=None, description="End of the last interval evaluated.")
    last_data_at: Time | None = Field(default=None, description="End of the last interval that had data.")
    errored_at: Time | None = Field(
        default=None, description="End of the last interval whose measurement failed (the source erred)."
    )


class RolloutStatus(ApiModel):
    observed_generation: int | None = None
    phase: Phase = Phase.PENDING
    reason: str = Field(default="", description="Reason of the last transition (also the Event reason).")
    message: str = ""
    current_step: int = Field(default=0, ge=0, description="Index into the strategy's steps.")
    step_count: int = 0
    step: str = Field(
        default="", description="The current step as people count it, e.g. 2/3 (currentStep counts from 0)."
    )
    step_started_at: MicroTime | None = Field(
        default=None, description="When the current step's traffic was first seen served."
    )
    started_at: Time | None = None
    finished_at: Time | None = None
    paused_from: Phase | None = Field(default=None, description="Phase to return to on resume.")
    paused_for: PausedFor | None = Field(
        default=None,
        description="Why a Paused rollout waits: Gate (a manual gate step), Request (a person paused it), "
        "Deadline (deadlines.rollout passed, onRolloutDeadline: pause) or Inconclusive (the decisive step ended "
        "inconclusive, onInconclusive: hold). Unset in every other phase.",
    )
    canary_weight: int = Field(default=0, ge=0, le=100)
    stable_weight: int = Field(default=100, ge=0, le=100)
    traffic: list[TrafficEntry] = Field(default_factory=list, description="The split the controller wants.")
    traffic_applied: bool = Field(default=False, description="Knative serves the wanted split (Ready).")
    last_analysis_at: Time | None = None
    analysis: list[MetricResult] = Field(default_factory=list)
    judge_state: dict[str, Any] = Field(
        default_factory=dict,
        description="Opaque per-metric state of the judges, so a restarted controller continues exactly.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    handled_request: str | None = Field(default=None, description="Id of the last manual request acted on.")
    undone_to: str | None = Field(
        default=None,
        description="Undone: the revision that serves 100% since the undo, until a new revision is rolled out.",
    )
    requests: list[HandledRequest] = Field(
        default_factory=list,
        description=f"The manual requests handled, oldest first (the last {REQUEST_HISTORY}).",
    )
    completed_webhooks: list[str] = Field(
        default_factory=list, description="Webhook gates already passed (e.g. preRollout/smoke, step-1/load)."
    )
    pending_webhooks: list[str] = Field(
        default_factory=list,
        description="Webhook calls started and not answered yet (a restarted controller calls them again).",
    )
    candidate_kept_until: Time | None = Field(
        default=None,
        description="A failed candidate stays reachable at 0% under `canary` until then "
        "(deadlines.keepFailedCandidate); unset once it has left the route.",
    )
    outcome: str = Field(
        default="",
        description="One sentence, set when the rollout ends: what ended it and why, with the numbers.",
    )
    without_data: list[str] = Field(
        default_factory=list,
        description="Gating metrics the decisive step ended without data for (their policy says noData: pass).",
    )
    inconclusive: list[str] = Field(
        default_factory=list,
        description="Gating metrics still inconclusive when the decisive step ended (see onInconclusive).",
    )
    candidate_pods: int | None = Field(
        default=None,
        description="While the candidate is short of pods: its ready pods, as Knative reports (actualReplicas).",
    )
    candidate_wanted_pods: int | None = Field(
        default=None,
        description="While the candidate is short of pods: what its autoscaler wants (desiredReplicas).",
    )
    short_since: MicroTime | None = Field(
        default=None,
        description="Since when the candidate has had fewer ready pods than wanted (unset when it has them).",
    )
    short_from: MicroTime | None = Field(default=None, description="Start of the last shortfall that ended.")
    short_until: MicroTime | None = Field(default=None, description="End of the last shortfall that ended.")
    stable_pods_before: int | None = Field(
        default=None,
        ge=0,
        description="The stable revision's ready pods when the rollout started: the capacity 100% of the "
        "traffic had (strategy.prewarm sizes the candidate from it).",
    )
    prewarm_pods: int | None = Field(
        default=None,
        ge=0,
        description="The min-scale the controller holds the candidate at so that it has the pods its next "
        "share needs (strategy.prewarm); unset: the candidate's own.",
    )
    prewarm_since: MicroTime | None = Field(
        default=None,
        description="Since when the next share has waited for the candidate's pre-warmed pods (unset when "
        "it does not wait).",
    )
    step_requests: int = Field(
        default=0,
        ge=0,
        description="Candidate requests analysed in the current step (analysis.minStepRequests).",
    )
    excluded_windows: int = Field(
        default=0,
        ge=0,
        description="Analysis windows left out of the comparison because the candidate's pods were not ready.",
    )
    notifications: NotificationLedger | None = Field(
        default=None, description="Events recorded for notification and not delivered everywhere yet."
    )
    conditions: list[Condition] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _paused_for_from_reason(cls, data: Any) -> Any:
        """Status written before pausedFor existed kept the pause's cause in its reason only."""
        if isinstance(data, dict) and data.get("phase") == Phase.PAUSED.value and "pausedFor" not in data:
            legacy = _LEGACY_PAUSE_REASONS.get(str(data.get("reason", "")), PausedFor.REQUEST)
            return {**data, "pausedFor": legacy.value}
        return data


class Rollout(ApiModel):
    api_version: Literal["knrollout.dev/v1alpha1"] = API_VERSION
    kind: Literal["Rollout"] = "Rollout"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RolloutSpec
    status: RolloutStatus = Field(default_factory=RolloutStatus)
