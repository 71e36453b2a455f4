"""When a traffic step may end: the evidence rule (docs/state-machine.md, "When a step may end"). Pure: the
policy, the current step, the status and the time in; a verdict with its reason out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rollout.api.durations import format_duration
from rollout.api.policy import NoDataPolicy, RolloutPolicySpec, WebhookType
from rollout.api.rollout import MetricResult, RolloutStatus, Verdict
from rollout.engine.capacity import short_of_pods
from rollout.engine.steps import EngineStep
from rollout.engine.webhooks import hooks_waiting

NOT_ENOUGH_TRAFFIC = "not enough traffic to tell yet"
# A probe's share of a quiet service's traffic may never be measured (no request, so no series): past this
# many bakes without data it ends without, since the first step still waits for its own evidence. Until then
# it waits, as a new revision's series reach Prometheus only after its scrape targets are discovered.
PROBE_WAITS_FOR_DATA = 3.0
LEANING = "the evidence leans toward a regression"


@dataclass(frozen=True)
class StepCheck:
    done: bool
    why: str
    without_data: tuple[str, ...] = ()  # gating metrics it ends without data for (noData: pass)
    inconclusive: tuple[str, ...] = ()  # gating comparisons it ends on without a conclusion


def seconds_since(a: datetime, b: datetime | None) -> float:
    """Seconds from `b` to `a`; 0 when `b` is unknown."""
    return (a - b).total_seconds() if b is not None else 0.0


def _fresh(r: MetricResult, started: datetime) -> bool:
    """The metric's latest window had data, and it lies in the current step."""
    return (
        r.last_data_at is not None
        and r.measured_at is not None
        and r.last_data_at >= r.measured_at
        and r.last_data_at > started
    )


def _metric_blocker(
    name: str, r: MetricResult | None, started: datetime, no_data: NoDataPolicy
) -> str | None:
    """Why this gating metric holds the step, if it does. Missing or failed evidence never counts as good:
    an error on the latest window holds whatever the count of errors in a row (that count only decides when
    holding turns into failure), and so does a latest window without data, unless the policy says noData:
    pass."""
    if r is not None and r.verdict == Verdict.FAIL:
        return f"{name} failed its last check"
    if r is not None and r.verdict == Verdict.ERROR:
        return f"{name}: the metric source errs ({r.message})"
    if (
        r is not None
        and r.errored_at is not None
        and r.measured_at is not None
        and r.errored_at >= r.measured_at
    ):
        return f"{name}: the metric source failed on the last window; holding until a window is measured"
    if no_data != NoDataPolicy.PASS and (r is None or not _fresh(r, started)):
        if r is not None and r.last_data_at is not None and r.last_data_at > started:
            return f"{name}: the last window had no data"
        return f"{name}: no data at this step yet"
    return None


def _leaning(policy: RolloutPolicySpec, results: dict[str, MetricResult]) -> list[str]:
    """The gating comparisons whose evidence leans toward a regression (p-value at or below the policy's
    leaningHold.pValue), as "name (p 0.12)"."""
    level = policy.analysis.leaning_hold.p_value
    out = []
    for metric in policy.analysis.metrics:
        r = results.get(metric.name)
        if metric.dry_run or metric.compare is None or r is None or r.p_value is None:
            continue
        if r.p_value <= level:
            out.append(f"{metric.name} (p {r.p_value:.2g})")
    return out


def _blind_because(step: EngineStep) -> str:
    if step.probe:
        return f"a probe waits for data at most {PROBE_WAITS_FOR_DATA:g} times its bake"
    return "noData: pass"


def step_check(
    policy: RolloutPolicySpec, step: EngineStep, status: RolloutStatus, now: datetime
) -> StepCheck:
    """Whether the current traffic step may end now, and why (or why not)."""
    if step.is_gate:
        return StepCheck(False, "at a gate")
    started = status.step_started_at
    short = short_of_pods(status)
    if short is not None:  # a step ends, and the next share is given, only while the candidate has its pods
        return StepCheck(False, short)
    if not status.traffic_applied or started is None:
        return StepCheck(False, "waiting for Knative to serve the step's traffic")
    elapsed = seconds_since(now, started)
    results = {r.name: r for r in status.analysis}
    blockers: list[str] = []
    comparisons_no_worse = True
    # the bake may end the step only once the window reaching into its last interval has been measured,
    # and one at least half inside the step: a short step's evidence is not mostly the previous share's
    interval = policy.analysis.interval
    final_window = started + timedelta(seconds=max(step.bake - interval, interval / 2))
    unmeasured: list[str] = []
    blind: list[str] = []  # noData: pass metrics whose latest window had no data
    for metric in policy.analysis.metrics:
        if metric.dry_run:
            continue
        r = results.get(metric.name)
        no_data = metric.no_data or policy.analysis.no_data
        if step.probe and elapsed >= PROBE_WAITS_FOR_DATA * step.bake:
            no_data = NoDataPolicy.PASS  # the ladder after it still waits for its own evidence
        blocker = _metric_blocker(metric.name, r, started, no_data)
        if blocker is not None:
            blockers.append(blocker)
        elif r is None or not _fresh(r, started):
            blind.append(metric.name)
        if r is None or r.measured_at is None or r.measured_at <= started or r.measured_at < final_window:
            unmeasured.append(metric.name)
        early = metric.compare is not None and metric.compare.early_stop
        if not (early and r is not None and r.no_worse and _fresh(r, started)):
            comparisons_no_worse = False
    waiting = hooks_waiting(policy, WebhookType.STEP, set(status.completed_webhooks), status.current_step)
    if waiting:  # a step hook gates its step: the step ends only once every one has passed
        blockers.append(f"waiting for webhook {', '.join(waiting)}")
    if blockers:
        return StepCheck(False, "; ".join(blockers))
    if elapsed >= step.bake and unmeasured:
        return StepCheck(False, f"bake time passed; waiting for the last window of {', '.join(unmeasured)}")
    wanted = policy.analysis.min_step_requests
    # a policy whose every gating metric may pass without data (noData: pass) accepts the bake time alone
    judged = not step.probe and any(
        not m.dry_run and (m.no_data or policy.analysis.no_data) != NoDataPolicy.PASS
        for m in policy.analysis.metrics
    )
    if elapsed >= step.bake and judged and status.step_requests < wanted:
        return StepCheck(
            False,
            f"{NOT_ENOUGH_TRAFFIC}: {status.step_requests} of {wanted} candidate requests analysed in this "
            "step (analysis.minStepRequests)",
        )
    leaning = _leaning(policy, results)
    hold = policy.analysis.leaning_hold
    if elapsed >= step.bake and leaning and elapsed < hold.max_bakes * step.bake:
        return StepCheck(
            False,
            f"{LEANING}: {', '.join(leaning)}; holding up to {format_duration(int(hold.max_bakes * step.bake))} "
            "for more evidence (analysis.leaningHold)",
        )
    if elapsed >= step.bake:
        # the policy allows it, and whoever reads the Event must know the step ended without that evidence
        without = f" without data for {', '.join(blind)} ({_blind_because(step)})" if blind else ""
        open_ = tuple(
            m.name
            for m in policy.analysis.metrics
            if not m.dry_run and (r := results.get(m.name)) is not None and r.verdict == Verdict.INCONCLUSIVE
        )
        why = f"bake time {format_duration(step.bake)} passed{without}"
        if open_:
            why += f"; {', '.join(open_)} still inconclusive"
        return StepCheck(True, why, tuple(blind), open_)
    if (
        step.early_stop
        and comparisons_no_worse
        and any(not m.dry_run for m in policy.analysis.metrics)
        and elapsed >= policy.analysis.interval
    ):
        return StepCheck(
            True, f"evidence shows the candidate is no worse after {format_duration(int(elapsed))}"
        )
    return StepCheck(False, f"baking {format_duration(int(elapsed))} of {format_duration(step.bake)}")
