"""Semantic rules for a RolloutPolicy that the models accept: a policy that parses but cannot work as
written (an error) or probably does not do what its author meant (a warning).

Validity rules that make a policy unusable whatever the context live in the models (rollout.api.policy)
so that the controller refuses the same policies; the rules here need judgement or look across fields.
`policy_issues` is pure and takes the parsed model plus the raw object (to know which fields were written).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rollout.api.durations import format_duration
from rollout.api.policy import Analysis, BuiltinMetric, Metric, NoDataPolicy, RolloutPolicy
from rollout.api.strategy import AbRouting, CanaryStrategy, Strategy
from rollout.knative.traffic import dns1035_label_errors
from rollout.lint.decision_rules import inconclusive_issues
from rollout.lint.findings import Issue, Path, error, warning
from rollout.lint.manifests import get
from rollout.lint.promql import template_problems

# Prometheus scrapes every 15-30 s in most clusters; an analysis needs at least two scrapes.
MIN_ANALYSIS_INTERVAL = 10.0
# A latency bound above this many seconds was almost certainly written in milliseconds.
LATENCY_SECONDS_SUSPICIOUS = 60.0
LABEL_VALUE_MAX = 63

SPEC: Path = ("spec",)
ANALYSIS: Path = ("spec", "analysis")
CANARY: Path = ("spec", "strategy", "canary")


def policy_issues(policy: RolloutPolicy, raw: Mapping[str, Any]) -> list[Issue]:
    spec = policy.spec
    issues: list[Issue] = []
    issues += _name_issues(policy)
    issues += _strategy_issues(spec.strategy, spec.analysis, raw)
    issues += inconclusive_issues(spec.strategy, spec.analysis, raw)
    issues += _timing_issues(policy, raw)
    issues += _metric_issues(spec.analysis, raw)
    issues += _url_issues(policy)
    issues += _null_issues(raw.get("spec"), ("spec",))
    return issues


def _null_issues(value: Any, path: Path) -> list[Issue]:
    """Explicit nulls: the CRD's fields are not nullable, so the API server drops them and the default
    applies, which is rarely what `null` meant (e.g. `alpha: null` to mean 'no significance level')."""
    if isinstance(value, Mapping):
        found = []
        for key, item in value.items():
            if item is None:
                found.append(
                    warning(
                        "policy/null-value",
                        (*path, str(key)),
                        f"`{key}: null` is dropped by the API server, so the default applies",
                        "remove the field to get its default, or give a value",
                    )
                )
            else:
                found += _null_issues(item, (*path, str(key)))
        return found
    if isinstance(value, list):
        return [issue for index, item in enumerate(value) for issue in _null_issues(item, (*path, index))]
    return []


def _name_issues(policy: RolloutPolicy) -> list[Issue]:
    name = policy.metadata.name
    if len(name) > LABEL_VALUE_MAX:
        return [
            warning(
                "policy/name-too-long",
                ("metadata", "name"),
                f"the name has {len(name)} characters, but label values have at most {LABEL_VALUE_MAX}: "
                "no object can opt in with `knrollout.dev/policy` to this policy",
                f"use a name of at most {LABEL_VALUE_MAX} characters",
            )
        ]
    return []


# -- strategy ----------------------------------------------------------------------------------------------


def _strategy_issues(strategy: Strategy, analysis: Analysis, raw: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    if strategy.canary is not None:
        issues += _canary_issues(strategy.canary, analysis)
    if strategy.blue_green is not None:
        issues += _tag_issues(
            strategy.blue_green.preview_tag, ("spec", "strategy", "blueGreen", "previewTag")
        )
    ab = strategy.ab_test
    if ab is not None:
        base: Path = ("spec", "strategy", "abTest")
        issues += _tag_issues(ab.control_tag, (*base, "controlTag"))
        issues += _tag_issues(ab.treatment_tag, (*base, "treatmentTag"))
        if (
            ab.routing == AbRouting.HEADER
            and get(raw, "spec", "strategy", "abTest", "splitPercent") is not None
        ):
            issues.append(
                warning(
                    "policy/ab-split",
                    (*base, "splitPercent"),
                    "splitPercent is ignored with routing: header, where requests choose their arm by header",
                    "remove splitPercent, or use routing: split",
                )
            )
    return issues


def _tag_issues(tag: str, path: Path) -> list[Issue]:
    problems = dns1035_label_errors(tag)
    if not problems:
        return []
    return [
        error(
            "policy/tag-name",
            path,
            f"{tag!r} cannot be a Knative tag: {'; '.join(problems)}",
            "a tag becomes part of a host name: start with a letter, e.g. 'preview'",
        )
    ]


def _canary_issues(canary: CanaryStrategy, analysis: Analysis) -> list[Issue]:
    issues: list[Issue] = []
    if (
        canary.step_weight is not None
        and canary.max_weight is not None
        and canary.step_weight > canary.max_weight
    ):
        issues.append(
            warning(
                "policy/step-weight",
                (*CANARY, "stepWeight"),
                f"stepWeight {canary.step_weight} is above maxWeight {canary.max_weight}: "
                f"the ladder is a single step at {canary.max_weight}%",
                "lower stepWeight so that the ladder has several steps",
            )
        )
    explicit = canary.steps is not None
    for index, step in enumerate(canary.ladder()):
        if step.weight is None:
            continue
        where: Path = (*CANARY, "steps", index, "weight") if explicit else (*CANARY, "maxWeight")
        if step.weight == 100:
            issues.append(
                warning(
                    "policy/weight-100",
                    where,
                    "a step at 100% leaves stable without traffic, so nothing can be compared with it, "
                    "and promotion sends 100% to the candidate anyway",
                    "end the ladder below 100, e.g. at 50: promotion follows the last step",
                )
            )
        elif step.weight == 0:
            issues.append(
                warning(
                    "policy/weight-zero",
                    where,
                    "a step at 0% sends no traffic to the candidate: it cannot be analysed",
                    "start the ladder at 1% or more",
                )
            )
        bake = step.bake if step.bake is not None else canary.interval
        if bake < analysis.warmup + analysis.interval:
            bake_path: Path = (*CANARY, "steps", index) if explicit else (*CANARY, "interval")
            issues.append(
                warning(
                    "policy/bake-shorter-than-interval",
                    (*bake_path, "bake") if explicit and step.bake is not None else bake_path,
                    f"this step bakes {format_duration(bake)}, less than {_first_analysis(analysis)}: "
                    "it ends before it is analysed",
                    "bake at least that long at each step, or shorten spec.analysis.interval"
                    + (" or spec.analysis.warmup" if analysis.warmup else ""),
                )
            )
    return issues


# -- time ----------------------------------------------------------------------------------------------


def _first_analysis(analysis: Analysis) -> str:
    """How long after a step's traffic is served its first analysis ends, in words."""
    interval = f"one analysis interval ({format_duration(analysis.interval)})"
    if not analysis.warmup:
        return interval
    return f"the warm-up ({format_duration(analysis.warmup)}) plus {interval}"


def _timing_issues(policy: RolloutPolicy, raw: Mapping[str, Any]) -> list[Issue]:
    spec = policy.spec
    issues: list[Issue] = []
    interval = spec.analysis.interval
    if interval < MIN_ANALYSIS_INTERVAL:
        issues.append(
            warning(
                "policy/interval-short",
                (*ANALYSIS, "interval"),
                f"analysis interval {format_duration(interval)} is shorter than {MIN_ANALYSIS_INTERVAL:g}s: "
                "Prometheus scrapes every 15-30s, so most intervals would see no new data",
                "use at least twice the scrape interval, e.g. 30s",
            )
        )
    strategy = spec.strategy
    phase_path: Path | None = None
    if strategy.blue_green is not None:
        phase_path, length = (
            ("spec", "strategy", "blueGreen", "analysisDuration"),
            strategy.blue_green.analysis_duration,
        )
    elif strategy.ab_test is not None:
        phase_path, length = ("spec", "strategy", "abTest", "duration"), strategy.ab_test.duration
    if phase_path is not None and length < spec.analysis.warmup + interval:
        issues.append(
            warning(
                "policy/bake-shorter-than-interval",
                phase_path,
                f"{phase_path[-1]} {format_duration(length)} is shorter than {_first_analysis(spec.analysis)}: "
                "the candidate is never analysed",
                "analyse for several intervals",
            )
        )
    minimum = _minimum_duration(strategy)
    deadline = spec.deadlines.rollout
    if minimum > deadline:
        early = _can_end_steps_early(spec.analysis)
        make = warning if early else error
        issues.append(
            make(
                "policy/deadline",
                ("spec", "deadlines", "rollout") if get(raw, "spec", "deadlines", "rollout") else SPEC,
                f"the rollout deadline ({format_duration(deadline)}) is shorter than the time the strategy "
                f"takes ({format_duration(minimum)} of bake and analysis)"
                + (
                    "; only steps that end early on strong evidence could finish in time"
                    if early
                    else ": every rollout would hit the deadline"
                ),
                f"set spec.deadlines.rollout above {format_duration(minimum)}, or shorten the steps",
            )
        )
    return issues


def _minimum_duration(strategy: Strategy) -> float:
    """Time the strategy needs at least: bakes and timed pauses (a person's pause adds an unknown time)."""
    if strategy.canary is not None:
        total = 0.0
        for step in strategy.canary.ladder():
            if step.weight is not None:
                total += step.bake if step.bake is not None else strategy.canary.interval
            elif step.pause is not None and step.pause.duration is not None:
                total += step.pause.duration
        return total
    if strategy.blue_green is not None:
        return strategy.blue_green.analysis_duration
    assert strategy.ab_test is not None
    return strategy.ab_test.duration


def _can_end_steps_early(analysis: Analysis) -> bool:
    return any(not m.dry_run and m.compare is not None and m.compare.early_stop for m in analysis.metrics)


# -- metrics ---------------------------------------------------------------------------------------------


def _metric_issues(analysis: Analysis, raw: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    deciding = [m for m in analysis.metrics if not m.dry_run]
    metrics_path: Path = (
        (*ANALYSIS, "metrics") if get(raw, "spec", "analysis", "metrics") is not None else ANALYSIS
    )
    if not deciding:
        issues.append(
            warning(
                "policy/nothing-decides",
                metrics_path,
                "no metric decides (every metric is dryRun, or there are none): rollouts are promoted "
                "on time alone and never rolled back",
                "make at least one metric non-dryRun, e.g. the builtin errorRate compared with stable",
            )
        )
    elif all(_no_data(m, analysis) == NoDataPolicy.PASS for m in deciding):
        issues.append(
            warning(
                "policy/no-data-passes",
                metrics_path,
                "every deciding metric treats no data as a pass: a candidate that receives no requests is "
                "promoted without a single request judged",
                "use noData: wait, the default, on at least one deciding metric",
            )
        )
    for index, metric in enumerate(analysis.metrics):
        issues += _one_metric(metric, (*ANALYSIS, "metrics", index), analysis, raw)
    issues += _failure_limit_issues(
        analysis.failure_limit.consecutive, analysis.failure_limit.total, ANALYSIS
    )
    return issues


def _no_data(metric: Metric, analysis: Analysis) -> NoDataPolicy:
    return metric.no_data if metric.no_data is not None else analysis.no_data


def _one_metric(metric: Metric, path: Path, analysis: Analysis, raw: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    if metric.query is not None:
        for problem in template_problems(metric.query):
            issues.append(error("policy/promql-syntax", (*path, "query"), problem.message, problem.hint))
    threshold = metric.threshold
    if metric.builtin == BuiltinMetric.LATENCY:
        bounds = [(name, getattr(threshold, name)) for name in ("min", "max")] if threshold else []
        for name, value in bounds:
            if value is not None and value > LATENCY_SECONDS_SUSPICIOUS:
                issues.append(
                    warning(
                        "policy/latency-unit",
                        (*path, "threshold", name),
                        f"latency {name} {value:g} is in seconds ({value / 60:g} minutes): probably meant "
                        "as milliseconds",
                        f"write {value / 1000:g} for {value:g} ms",
                    )
                )
        edges = metric.compare.latency_edges if metric.compare else None
        if edges:
            issues += _edge_issues(edges, (*path, "compare", "latencyEdges"))
    never_fails = threshold is not None and _threshold_never_fails(metric)
    if not metric.dry_run and never_fails and metric.compare is None:
        issues.append(
            warning(
                "policy/metric-never-decides",
                (*path, "threshold"),
                f"every {metric.builtin} value passes this threshold and there is no comparison: "
                "the metric can never fail a candidate",
                "tighten the threshold, e.g. max: 0.01 for a 1% error rate, or add `compare`",
            )
        )
    elif never_fails:
        issues.append(
            warning(
                "policy/threshold-never-fails",
                (*path, "threshold"),
                f"every {metric.builtin} value passes this threshold: only the comparison decides",
                "tighten the threshold or remove it",
            )
        )
    if metric.builtin == BuiltinMetric.ERROR_RATE and threshold is not None and (threshold.min or 0) > 0:
        issues.append(
            warning(
                "policy/error-rate-min",
                (*path, "threshold", "min"),
                f"a minimum error rate of {threshold.min:g} fails a healthy candidate that has no errors",
                "use `max` to bound the error rate",
            )
        )
    min_requests = metric.min_requests if metric.min_requests is not None else analysis.min_requests
    if not metric.dry_run and threshold is not None and metric.query is None and min_requests == 0:
        where = (*path, "minRequests") if metric.min_requests is not None else (*ANALYSIS, "minRequests")
        issues.append(
            warning(
                "policy/min-requests-zero",
                where,
                f"metric {metric.name!r} is judged against a threshold with minRequests 0: one failed request "
                "out of one is a 100% error rate",
                "require some requests per interval, e.g. minRequests: 50",
            )
        )
    if metric.failure_limit is not None:
        issues += _failure_limit_issues(metric.failure_limit.consecutive, metric.failure_limit.total, path)
    return issues


def _threshold_never_fails(metric: Metric) -> bool:
    threshold = metric.threshold
    assert threshold is not None
    low_ok = threshold.min is None or threshold.min <= 0
    if metric.builtin == BuiltinMetric.ERROR_RATE:
        return low_ok and (threshold.max is None or threshold.max >= 1)
    if metric.builtin == BuiltinMetric.LATENCY:
        return low_ok and threshold.max is None
    return False  # a custom query's range is unknown


def _edge_issues(edges: list[float], path: Path) -> list[Issue]:
    issues: list[Issue] = []
    if any(e <= 0 for e in edges) or any(b <= a for a, b in itertools.pairwise(edges)):
        issues.append(
            warning(
                "policy/latency-edges",
                path,
                "latency edges should be positive and strictly increasing",
                "list the thresholds in seconds from the smallest, e.g. [0.1, 0.25, 1]",
            )
        )
    if any(e > LATENCY_SECONDS_SUSPICIOUS for e in edges):
        issues.append(
            warning(
                "policy/latency-unit",
                path,
                f"a latency edge above {LATENCY_SECONDS_SUSPICIOUS:g} seconds: probably meant as milliseconds",
                "latency edges are in seconds: 0.25 is 250 ms",
            )
        )
    return issues


def _failure_limit_issues(consecutive: int, total: int, path: Path) -> list[Issue]:
    if consecutive <= total:
        return []
    return [
        warning(
            "policy/failure-limit",
            (*path, "failureLimit", "consecutive"),
            f"consecutive ({consecutive}) is above total ({total}): the total limit always triggers first",
            "make consecutive at most total",
        )
    ]


# -- URLs ------------------------------------------------------------------------------------------------


def _url_issues(policy: RolloutPolicy) -> list[Issue]:
    issues: list[Issue] = []
    address = policy.spec.metric_source.prometheus.address
    if address is not None:
        where: Path = ("spec", "metricSource", "prometheus", "address")
        issues += url_issues(address, where, "Prometheus")
        issues.append(
            warning(
                "policy/metric-source-grant",
                where,
                "a policy's own Prometheus works only where the admins allow it "
                "(rollout controller --allow-policy-metric-address, off by default)",
                "prefer metricSource.ref: <a ClusterMetricSource the admins grant>",
            )
        )
        if "/api/v1" in (urlsplit(address).path or ""):
            issues.append(
                warning(
                    "policy/url",
                    where,
                    "the Prometheus address includes the API path",
                    "give the base URL only, e.g. http://prometheus.monitoring:9090",
                )
            )
    for index, hook in enumerate(policy.spec.webhooks):
        issues += url_issues(hook.url, ("spec", "webhooks", index, "url"), f"webhook {hook.name!r}")
    return issues


def url_issues(url: str, path: Path, what: str) -> list[Issue]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError as exc:
        return [
            error(
                "policy/url",
                path,
                f"{what} URL {url!r} is malformed: {exc}",
                "write scheme://host[:port]/path, with a port between 1 and 65535",
            )
        ]
    if not parts.hostname:
        return [error("policy/url", path, f"{what} URL {url!r} has no host", "write http://host[:port]/path")]
    issues: list[Issue] = []
    if parts.username or parts.password:
        issues.append(
            warning(
                "policy/url",
                path,
                f"{what} URL carries credentials, which end up in git",
                "use the auth fields with a Secret instead",
            )
        )
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        issues.append(
            warning(
                "policy/url",
                path,
                f"{what} URL points at {parts.hostname}, which is the controller's own pod",
                "use the Service's cluster DNS name, e.g. http://name.namespace.svc:port",
            )
        )
    return issues
