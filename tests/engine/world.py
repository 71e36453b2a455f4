"""A tiny driver for `decide` in tests: Knative serves each plan at the next tick (unless told not to)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.api.load import policy_hash
from rollout.api.policy import ObjectMeta, RolloutPolicySpec
from rollout.api.rollout import (
    ManualRequest,
    MetricResult,
    PolicyRef,
    RequestAction,
    Rollout,
    RolloutSpec,
    TargetRef,
    Verdict,
)
from rollout.engine.inputs import AnalysisUpdate, Decision, Inputs, WebhookResult
from rollout.engine.machine import decide
from rollout.engine.observations import ObservedTraffic, RevisionState

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def make_rollout(policy: dict[str, Any] | RolloutPolicySpec) -> Rollout:
    spec = policy if isinstance(policy, RolloutPolicySpec) else RolloutPolicySpec.model_validate(policy)
    return Rollout(
        metadata=ObjectMeta(name="hello-00002", namespace="default", generation=1),
        spec=RolloutSpec(
            target=TargetRef(name="hello"),
            stable_revision="hello-00001",
            candidate_revision="hello-00002",
            policy=PolicyRef(name="p", generation=1, hash=policy_hash(spec), spec=spec),
        ),
    )


def results(
    now: datetime,
    *,
    verdict: Verdict = Verdict.PASS,
    no_worse: bool = False,
    names: tuple[str, ...] = ("error-rate", "latency"),
) -> tuple[MetricResult, ...]:
    return tuple(
        MetricResult(
            name=n,
            verdict=verdict,
            no_worse=no_worse,
            value=0.001,
            stable_value=0.001,
            canary_requests=None if verdict in (Verdict.NO_DATA, Verdict.ERROR) else 100,
            measured_at=now,
            last_data_at=None if verdict in (Verdict.NO_DATA, Verdict.ERROR) else now,
        )
        for n in names
    )


@dataclass
class World:
    rollout: Rollout
    now: datetime = T0
    candidate_ready: bool | None = True
    candidate_message: str = ""
    candidate_reason: str = ""
    candidate_pods: int | None = None  # ready pods, as Knative reports (None: not reported)
    wanted_pods: int | None = None
    stable_pods: int | None = None  # the stable revision's ready pods (None: not reported)
    max_pods: int | None = None  # the candidate's max-scale
    knative_follows: bool = True
    served: ObservedTraffic | None = field(
        default_factory=lambda: ObservedTraffic({"hello-00001": 100}, {"stable": "hello-00001"}, True)
    )
    history: list[Decision] = field(default_factory=list)
    _request_seq: int = 0

    @property
    def status(self) -> Any:
        return self.rollout.status

    def request(self, action: RequestAction, by: str = "alice") -> None:
        self._request_seq += 1
        req = ManualRequest(action=action, id=f"r{self._request_seq}", requested_at=self.now, requested_by=by)
        self.rollout = self.rollout.model_copy(
            update={
                "spec": self.rollout.spec.model_copy(update={"request": req}),
                "metadata": self.rollout.metadata.model_copy(
                    update={"generation": (self.rollout.metadata.generation or 1) + 1}
                ),
            }
        )

    def tick(
        self,
        seconds: float = 5,
        *,
        analysis: AnalysisUpdate | None = None,
        superseded_by: str | None = None,
        reverted: bool = False,
        opted_out: bool = False,
        webhooks: dict[str, WebhookResult] | None = None,
    ) -> Decision:
        self.now += timedelta(seconds=seconds)
        d = decide(
            Inputs(
                now=self.now,
                rollout=self.rollout,
                candidate=RevisionState(
                    "hello-00002",
                    self.candidate_ready,
                    self.candidate_reason,
                    self.candidate_message,
                    self.candidate_pods,
                    self.wanted_pods,
                    self.max_pods,
                ),
                stable_pods=self.stable_pods,
                traffic=self.served,
                analysis=analysis,
                superseded_by=superseded_by,
                template_reverted=reverted,
                opted_out=opted_out,
                webhooks=webhooks or {},
            )
        )
        self.rollout = self.rollout.model_copy(update={"status": d.status})
        if self.knative_follows:
            self.served = ObservedTraffic(d.plan.percents(), d.plan.tags(), True)
        self.history.append(d)
        return d

    def passing(
        self, *, no_worse: bool = False, verdict: Verdict = Verdict.PASS, failed: tuple[str, ...] = ()
    ) -> AnalysisUpdate:
        return AnalysisUpdate(
            window_end=self.now,
            results=results(self.now, verdict=verdict, no_worse=no_worse),
            judge_state={"n": 1},
            failed=failed,
        )
