"""One policy metric judged on one interval: the threshold judge and/or the sequential comparison, their
state in and out as JSON, and the verdict with the numbers behind it (a `MetricResult` for the Rollout
status and the logs). Also how the metrics of a policy add up to what the step should do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollout.api.policy import Analysis, BuiltinMetric, Metric, NoDataPolicy
from rollout.api.rollout import MetricResult, Verdict
from rollout.engine.judges import comparison as cmp
from rollout.engine.judges.threshold import (
    Check,
    Ledger,
    Limits,
    ThresholdOutcome,
    ThresholdRule,
    judge,
)
from rollout.engine.observations import (
    LatencyHistogram,
    Measurement,
    MeasurementError,
    MetricObservation,
    NoData,
    RequestCounts,
    Scalar,
)
from rollout.engine.units import metric_unit


@dataclass(frozen=True)
class MetricRules:
    """What the policy asks of one metric, resolved against the analysis defaults."""

    name: str
    dry_run: bool
    threshold: ThresholdRule | None
    comparison: cmp.ComparisonRule | None  # sequential test (builtin metrics)
    ratio: ThresholdRule | None  # non-sequential comparison: canary value <= max x stable value
    quantile: float  # latency quantile compared with a threshold
    limits: Limits = field(default_factory=Limits)
    no_data: NoDataPolicy = NoDataPolicy.WAIT


def _sequential(metric: Metric) -> bool:
    return metric.compare is not None and metric.compare.sequential and metric.builtin is not None


def buckets_read(metric: Metric, state: Mapping[str, Any] | None) -> tuple[float, ...] | None:
    """The latency buckets (upper bounds in seconds, +Inf aside) this metric's judges read from here on: once
    its sequential comparison has chosen its thresholds, only those, unless a quantile is also judged (a
    threshold, or a comparison of quantiles), which needs every bucket; None: every bucket."""
    if metric.builtin is not BuiltinMetric.LATENCY or metric.threshold is not None or not _sequential(metric):
        return None
    streams = (state or {}).get("compare", {}).get("streams", [])
    edges = sorted({float(s["edge"]) for s in streams if s.get("edge") is not None})
    return tuple(edges) or None


def comparison_alpha(analysis: Analysis, metric: Metric) -> float:
    """A comparison's own `alpha`, or an equal share of `analysis.alpha` among the deciding sequential
    comparisons that set none, so that `analysis.alpha` bounds the policy's false-rollback probability."""
    if metric.compare is not None and metric.compare.alpha is not None:
        return metric.compare.alpha
    sharing = [
        m
        for m in analysis.metrics
        if _sequential(m) and not m.dry_run and m.compare is not None and m.compare.alpha is None
    ]
    return analysis.alpha / max(len(sharing), 1)


def rules_for(analysis: Analysis, metric: Metric, error_gate: float | None = None) -> MetricRules:
    limit = metric.failure_limit or analysis.failure_limit
    limits = Limits(consecutive_failures=limit.consecutive, total_failures=limit.total)
    no_data = metric.no_data or analysis.no_data
    min_requests = metric.min_requests if metric.min_requests is not None else analysis.min_requests
    threshold = None
    if metric.threshold is not None:
        threshold = ThresholdRule(
            metric=metric.name,
            min=metric.threshold.min,
            max=metric.threshold.max,
            limits=limits,
            no_data=no_data,
            min_requests=min_requests if metric.builtin is not None else 0,
            unit=metric_unit(metric),
        )
    comparison = None
    ratio = None
    if metric.compare is not None and _sequential(metric):
        c = metric.compare
        kind = cmp.Kind.ERRORS if metric.builtin is BuiltinMetric.ERROR_RATE else cmp.Kind.LATENCY
        gate = error_gate
        if gate is None and kind is cmp.Kind.ERRORS and metric.threshold is not None:
            gate = metric.threshold.max
        comparison = cmp.ComparisonRule(
            metric=metric.name,
            kind=kind,
            alpha=comparison_alpha(analysis, metric),
            psi0=1.0 + c.max_relative_degradation,
            psi_max=1.0 + c.early_stop_margin if c.early_stop else None,
            latency_edges=tuple(c.latency_edges) if c.latency_edges else None,
            error_gate=gate if kind is cmp.Kind.ERRORS else None,
        )
    elif metric.compare is not None:
        ratio = ThresholdRule(
            metric=metric.name,
            max=1.0 + metric.compare.max_relative_degradation,
            limits=limits,
            no_data=no_data,
        )
    return MetricRules(
        name=metric.name,
        dry_run=metric.dry_run,
        threshold=threshold,
        comparison=comparison,
        ratio=ratio,
        quantile=metric.effective_quantile,
        limits=limits,
        no_data=no_data,
    )


@dataclass(frozen=True)
class Judgement:
    """The verdict on one metric for one interval, and what it asks of the step (never set for dry-run)."""

    result: MetricResult
    state: dict[str, Any]
    rollback: bool
    hold: bool
    ready: bool  # a sequential comparison has shown the canary no worse in this step
    errored: bool
    can_end_step: bool  # this metric is a deciding sequential comparison


def value_of(measurement: Measurement, quantile: float) -> tuple[float | None, int | None, str | None]:
    """(value, requests behind it, error) of one measurement."""
    if isinstance(measurement, MeasurementError):
        return None, None, measurement.message
    if isinstance(measurement, NoData):
        return None, None, None
    if isinstance(measurement, RequestCounts):
        return measurement.rate, measurement.requests, None
    if isinstance(measurement, LatencyHistogram):
        return measurement.quantile(quantile), measurement.total, None
    if isinstance(measurement, Scalar):
        return measurement.value, None, None
    raise TypeError(f"unknown measurement {measurement!r}")


def _ratio_value(canary: float | None, stable: float | None) -> float | None:
    if canary is None or stable is None or math.isnan(canary) or math.isnan(stable):
        return None
    if stable == 0.0:
        return 1.0 if canary == 0.0 else math.inf
    return canary / stable


def judge_metric(
    rules: MetricRules,
    state: Mapping[str, Any] | None,
    observation: MetricObservation,
    step: int,
    baseline: Measurement | None = None,
) -> Judgement:
    """Judge one interval. `state` is what the previous call returned (None or {} at the start); `step` the
    index of the step whose traffic the interval measured; `baseline` stable's measurement over a reference
    window before the rollout (latency thresholds are chosen from it), used only on the first call."""
    state = dict(state or {})
    new_state: dict[str, Any] = {}
    c_value, c_sample, c_error = value_of(observation.canary, rules.quantile)
    s_value, _, s_error = value_of(observation.stable, rules.quantile)
    outcomes: list[ThresholdOutcome] = []
    threshold_out = None
    if rules.threshold is not None:
        threshold_out = judge(
            rules.threshold, Ledger.from_dict(state.get("threshold", {})), c_value, c_sample, c_error
        )
        new_state["threshold"] = threshold_out.ledger.to_dict()
        outcomes.append(threshold_out)
    if rules.ratio is not None:
        ratio_out = judge(
            rules.ratio,
            Ledger.from_dict(state.get("ratio", {})),
            _ratio_value(c_value, s_value),
            None,
            c_error or s_error,
        )
        new_state["ratio"] = ratio_out.ledger.to_dict()
        outcomes.append(ratio_out)
    cmp_out = None
    if rules.comparison is not None:
        if "compare" in state:
            cmp_state = cmp.ComparisonState.from_dict(state["compare"])
        else:
            cmp_state = cmp.start(rules.comparison, baseline)
        # A state read from JSON is ours to change in place.
        cmp_out = cmp.fold(rules.comparison, cmp_state, observation.canary, observation.stable, step)
        new_state["compare"] = cmp_state.to_dict()
        ledger = Ledger.from_dict(state.get("compareChecks", {}))
        check_out = _comparison_check(rules, ledger, observation, c_error or s_error)
        new_state["compareChecks"] = check_out.ledger.to_dict()
        outcomes.append(check_out)

    arms_answered = not any(
        isinstance(m, NoData | MeasurementError) for m in (observation.canary, observation.stable)
    )
    if cmp_out is not None and arms_answered:
        # The comparison judges any sample size; a threshold short of minRequests then neither holds the
        # step nor makes the metric "without data" (it is a guardrail for when there are enough requests).
        outcomes = [o for o in outcomes if not (o is threshold_out and o.check is Check.NO_DATA)]
    had_data = arms_answered and not any(o.check in (Check.NO_DATA, Check.ERROR) for o in outcomes)
    last_data = observation.end.isoformat() if had_data else state.get("lastDataAt")
    if last_data is not None:
        new_state["lastDataAt"] = last_data
    # the source failed on this window (before the consecutive-error limit makes the verdict Error): the
    # step holds on it all the same (rollout.engine.stepcheck)
    last_error = observation.end.isoformat() if (c_error or s_error) else state.get("lastErrorAt")
    if last_error is not None:
        new_state["lastErrorAt"] = last_error
    rollback = any(o.rollback for o in outcomes) or (cmp_out is not None and cmp_out.rollback)
    hold = any(o.hold for o in outcomes)
    errored = any(o.errored for o in outcomes)
    ready = cmp_out is not None and cmp_out.no_worse and not hold and not rollback
    result = _result(
        rules,
        observation,
        outcomes,
        threshold_out=threshold_out,
        cmp_out=cmp_out,
        rollback=rollback,
        errored=errored,
        ready=ready,
        last_data_at=datetime.fromisoformat(last_data) if last_data is not None else None,
        errored_at=datetime.fromisoformat(last_error) if last_error is not None else None,
    )
    deciding = not rules.dry_run
    return Judgement(
        result=result,
        state=new_state,
        rollback=deciding and rollback,
        hold=deciding and hold,
        ready=deciding and ready,
        errored=deciding and errored,
        can_end_step=deciding and rules.comparison is not None and rules.comparison.psi_max is not None,
    )


def _comparison_check(
    rules: MetricRules, ledger: Ledger, observation: MetricObservation, error: str | None
) -> ThresholdOutcome:
    """The comparison's own bookkeeping of no data and errors (the policy's noData applies to it too)."""
    assert rules.comparison is not None
    no_data = isinstance(observation.canary, NoData) or isinstance(observation.stable, NoData)
    probe = ThresholdRule(metric=rules.name, limits=rules.limits, no_data=rules.no_data)
    return judge(probe, ledger, None if no_data else 0.0, None, error)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _result(
    rules: MetricRules,
    observation: MetricObservation,
    outcomes: Sequence[ThresholdOutcome],
    *,
    threshold_out: ThresholdOutcome | None,
    cmp_out: cmp.ComparisonOutcome | None,
    rollback: bool,
    errored: bool,
    ready: bool,
    last_data_at: datetime | None,
    errored_at: datetime | None,
) -> MetricResult:
    c_value, c_sample, _ = value_of(observation.canary, rules.quantile)
    s_value, s_sample, _ = value_of(observation.stable, rules.quantile)
    if rollback or any(o.check is Check.FAILED for o in outcomes):
        verdict = Verdict.FAIL  # the last check failed (a rollback only when `rollback` is set too)
    elif errored:
        verdict = Verdict.ERROR
    elif any(o.check is Check.NO_DATA for o in outcomes):
        verdict = Verdict.NO_DATA
    elif ready or (cmp_out is None and outcomes and all(o.check is Check.PASSED for o in outcomes)):
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    parts = [o.message for o in outcomes if o.check is not Check.PASSED or o is threshold_out]
    fields: dict[str, Any] = {}
    if cmp_out is not None and rules.comparison is not None:
        worst = cmp_out.worst
        cut = math.log(1.0 / rules.comparison.alpha)
        parts.append(
            f"log M {cmp_out.log_m:.3f} (rollback at {cut:.3f}), p {cmp_out.p_value:.3g}"
            + ("; no worse" if cmp_out.no_worse else "")
        )
        promote_cut = math.log(1.0 / rules.comparison.beta)
        for s in cmp_out.streams:
            side = ""
            if s.no_worse_log_e is not None:
                side = f", no-worse log e {s.no_worse_log_e:.2f}"
                if s.gate_log_e is not None:
                    side += f", under-gate log e {s.gate_log_e:.2f}"
                side += f" (step may end at {promote_cut:.2f})"
            parts.append(
                f"{s.name}: canary {s.canary_bad}/{s.canary_requests}, stable {s.stable_bad}/"
                f"{s.stable_requests}, ratio {_fmt(s.ratio_estimate)} in [{_fmt(s.ratio_lower)}, "
                f"{_fmt(s.ratio_upper)}], regression log e {s.log_m:.2f}{side}"
            )
        fields = {
            "log_evidence": cmp_out.log_m,
            "p_value": cmp_out.p_value,
            "ratio_lower": worst.ratio_lower if worst else None,
            "ratio_upper": worst.ratio_upper if worst else None,
            "no_worse": cmp_out.no_worse,
        }
    ledger = threshold_out.ledger if threshold_out is not None else (outcomes[0].ledger if outcomes else None)
    # Built from already-checked numbers: skip validation (this runs every tick for every metric).
    return MetricResult.model_construct(
        name=rules.name,
        verdict=verdict,
        dry_run=rules.dry_run,
        value=_finite(c_value),
        stable_value=_finite(s_value),
        threshold_min=rules.threshold.min if rules.threshold else None,
        threshold_max=rules.threshold.max if rules.threshold else None,
        canary_requests=c_sample,
        stable_requests=s_sample,
        consecutive_failures=max((o.ledger.consecutive_failures for o in outcomes), default=0),
        total_failures=max((o.ledger.total_failures for o in outcomes), default=0),
        consecutive_errors=ledger.consecutive_errors if ledger else 0,
        message="; ".join(p for p in parts if p),
        measured_at=observation.end,
        last_data_at=last_data_at,
        errored_at=errored_at,
        **fields,
    )


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class StepAdvice:
    """What the judged metrics ask of the current step."""

    rollback: tuple[str, ...]  # metrics that ask for a rollback
    errored: tuple[str, ...]  # metrics whose source keeps failing
    holding: tuple[str, ...]  # metrics that keep the step from advancing
    end_early: bool  # every deciding sequential comparison shows the canary no worse, nothing holds


def advise(judgements: Iterable[Judgement]) -> StepAdvice:
    items = list(judgements)
    enders = [j for j in items if j.can_end_step]
    return StepAdvice(
        rollback=tuple(j.result.name for j in items if j.rollback),
        errored=tuple(j.result.name for j in items if j.errored),
        holding=tuple(j.result.name for j in items if j.hold),
        end_early=bool(enders)
        and all(j.ready for j in enders)
        and not any(j.hold or j.rollback for j in items),
    )
