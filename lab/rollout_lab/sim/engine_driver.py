"""Our engine in the simulator: the real state machine (`rollout.engine.machine.decide`) and the real judges
(`rollout.engine.judges.evaluate`) on a virtual clock, reading simulated Prometheus through a `RunView`.

It reconciles the way the controller does: when an analysis tick is due, when the step's bake time may have
passed, and right after a traffic change (Knative is assumed to serve a new split at once, so the machine
sees it applied in the same instant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.api.load import policy_hash
from rollout.api.policy import BuiltinMetric, Metric, RolloutPolicySpec
from rollout.api.rollout import Phase, PolicyRef, Rollout, RolloutSpec, TargetRef
from rollout.engine.inputs import AnalysisUpdate, Inputs, RecordEvent
from rollout.engine.judges.evaluate import evaluate
from rollout.engine.judges.metric import buckets_read
from rollout.engine.machine import decide
from rollout.engine.observations import (
    Measurement,
    MeasurementError,
    MetricObservation,
    ObservedTraffic,
    RevisionState,
)
from rollout.engine.plans import TrafficPlan, plan_applied
from rollout.engine.prewarm import pods_for
from rollout.engine.steps import engine_steps, step_at
from rollout.engine.windows import analysis_due, analysis_since
from rollout_lab.sim.counters import RunView
from rollout_lab.sim.drivers import PROMOTED, ROLLED_BACK, Outcome, TimelineEntry
from rollout_lab.sim.traffic import CANARY, STABLE

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
STABLE_REVISION = "service-00001"
CANDIDATE_REVISION = "service-00002"
STABLE_PODS = 10  # the stable's pods, serving all traffic: a share needs that share of them (pods_for)


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def measure(
    view: RunView, metric: Metric, state: Mapping[str, Any] | None, arm: int, start: float, end: float
) -> Measurement:
    if metric.builtin is BuiltinMetric.ERROR_RATE:
        return view.requests(arm, start, end)
    if metric.builtin is BuiltinMetric.LATENCY:
        return view.histogram(arm, start, end, buckets_read(metric, state))
    return MeasurementError("custom queries are not simulated")


@dataclass
class EngineDriver:
    policy: RolloutPolicySpec
    baselines: Mapping[str, Measurement] = field(default_factory=dict)
    trace: bool = False
    name: str = "knative-rollout"
    weight: int = 0
    outcome: Outcome | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    warmed: bool = False

    def __post_init__(self) -> None:
        self.rollout = Rollout(
            spec=RolloutSpec(
                target=TargetRef(name="service"),
                stable_revision=STABLE_REVISION,
                candidate_revision=CANDIDATE_REVISION,
                policy=PolicyRef(name="policy", hash=policy_hash(self.policy), spec=self.policy),
            )
        )
        self.steps = engine_steps(self.policy)
        self.traffic: ObservedTraffic | None = None
        # The candidate's pods, as Knative's autoscaler runs them when the scenario has cold starts: it wants
        # that share of STABLE_PODS its traffic needs, or the pre-warm hold; new pods are ready cold_seconds
        # after it wants them (initial scale: one pod, ready with the revision).
        self.ready_pods = 1
        self.wanted_pods = 1
        self.pods_at = -1.0  # the pods it wants are ready from then on

    def candidate(self, now: float, view: RunView) -> RevisionState:
        """The candidate as Knative reports it: Ready, and while new pods start, fewer ready pods than its
        autoscaler wants."""
        if view.cold_seconds <= 0:
            return RevisionState(name=CANDIDATE_REVISION, ready=True)
        if now >= self.pods_at:
            self.ready_pods = self.wanted_pods
        return RevisionState(CANDIDATE_REVISION, True, pods=self.ready_pods, wanted_pods=self.wanted_pods)

    def _scale(self, now: float, view: RunView) -> None:
        """Knative's autoscaler after a decision: the pods the served share needs, at least the hold."""
        if view.cold_seconds <= 0:
            return
        served = self.traffic.percents.get(CANDIDATE_REVISION, 0) if self.traffic is not None else 0
        wanted = max(1, pods_for(served, STABLE_PODS, None), self.rollout.status.prewarm_pods or 0)
        if wanted > self.wanted_pods:
            self.wanted_pods = wanted
            self.pods_at = now + view.cold_seconds

    def _wake(self, now: float) -> bool:
        status = self.rollout.status
        if status.short_since is not None and now >= self.pods_at:
            return True  # its pods are ready: the controller hears of it from the revision's status
        if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or not status.traffic_applied:
            return True
        if analysis_due(self.rollout, at(now)):
            return True
        started = status.step_started_at
        step = step_at(self.steps, status.current_step)
        return started is not None and (at(now) - started).total_seconds() >= step.bake

    def tick(self, now: float, view: RunView) -> None:
        if self.outcome is not None or not self._wake(now):
            return
        analysis = None
        if analysis_due(self.rollout, at(now)):
            analysis = self._analyse(now, view)
        plan = self._decide(now, analysis, view)
        if self.outcome is None and not plan_applied(plan, self.traffic):
            # Knative serves the new split at once: the next reconcile sees it applied; a larger share
            # starts new candidate pods unless they were pre-warmed
            share = plan.percents().get(CANDIDATE_REVISION, 0)
            self.warmed = view.cold_seconds <= 0 or self.ready_pods >= pods_for(share, STABLE_PODS, None)
            self.traffic = ObservedTraffic(percents=plan.percents(), tags=plan.tags(), ready=True)
            self._scale(now, view)
            self._decide(now, None, view)
        self._scale(now, view)

    def _analyse(self, now: float, view: RunView) -> AnalysisUpdate | None:
        end = view.visible_until(now)
        # The window runs on from the data end of the last tick, which the status records (restart-safe).
        last = self.rollout.status.last_analysis_at
        start = view.visible_until((last - EPOCH).total_seconds()) if last is not None else 0.0
        if self.policy.analysis.warmup > 0:
            # with a warm-up, the first seconds of each step are never analysed
            since = analysis_since(self.rollout)
            if since is not None:
                start = max(start, (since - EPOCH).total_seconds())
        if end <= start:
            return None
        observations = {
            m.name: MetricObservation(
                metric=m.name,
                start=at(start),
                end=at(end),
                canary=measure(view, m, self.rollout.status.judge_state.get(m.name), CANARY, start, end),
                stable=measure(view, m, self.rollout.status.judge_state.get(m.name), STABLE, start, end),
            )
            for m in self.policy.analysis.metrics
        }
        update, _ = evaluate(
            self.policy,
            self.rollout.status.judge_state,
            observations,
            self.rollout.status.current_step,
            (at(start), at(end)),
            baselines=self.baselines,
            evaluated_at=at(now),
        )
        if self.trace:
            summary = ", ".join(
                f"{r.name} {r.verdict.value}" + (f" p={r.p_value:.3g}" if r.p_value is not None else "")
                for r in update.results
            )
            self.timeline.append(TimelineEntry(now, self.weight, f"analysis: {summary}"))
        return update

    def _decide(self, now: float, analysis: AnalysisUpdate | None, view: RunView) -> TrafficPlan:
        decision = decide(
            Inputs(
                now=at(now),
                rollout=self.rollout,
                candidate=self.candidate(now, view),
                stable_pods=STABLE_PODS if view.cold_seconds > 0 else None,
                traffic=self.traffic,
                analysis=analysis,
            )
        )
        self.rollout = self.rollout.model_copy(update={"status": decision.status})
        status = decision.status
        self.weight = status.canary_weight
        if self.trace:
            for action in decision.actions:
                if isinstance(action, RecordEvent):
                    self.timeline.append(
                        TimelineEntry(now, self.weight, f"{action.reason}: {action.message}")
                    )
        if status.phase == Phase.ROLLED_BACK:
            self.outcome = Outcome(ROLLED_BACK, now, status.message)
        elif status.phase in (Phase.PROMOTING, Phase.SUCCEEDED):
            self.weight = 100
            self.outcome = Outcome(PROMOTED, now, status.reason)
        elif status.phase.terminal:
            self.outcome = Outcome(status.phase.value, now, status.message)
        return decision.plan
