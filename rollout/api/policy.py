"""RolloutPolicy (knrollout.dev/v1alpha1): how a Knative Service is rolled out.

A Knative Service or a standalone Route opts in with the label `knrollout.dev/policy: <name>`; the policy lives
in the same namespace. Every default below is the safe choice and is written into the CRD's descriptions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from rollout.api.common import API_VERSION, ApiModel, Condition, NameStr, field_error
from rollout.api.durations import Duration, at_most, check_at_most
from rollout.api.notifications import Notification
from rollout.api.promql import template_problems
from rollout.api.source import HeaderValue, MetricSource
from rollout.api.strategy import Strategy

# ---------------------------------------------------------------------------------------------- analysis


class NoDataPolicy(StrEnum):
    """What a measurement without data means."""

    WAIT = "wait"  # neither pass nor fail: the step does not advance until there is data
    PASS = "pass"  # counts as a passing check
    FAIL = "fail"  # counts as a failed check


class BuiltinMetric(StrEnum):
    ERROR_RATE = "errorRate"  # share of 5xx responses (activator errors counted for their revision)
    LATENCY = "latency"  # request latency from queue-proxy histograms


class FailureLimit(ApiModel):
    consecutive: int = Field(
        default=3, ge=1, le=1000, description="Roll back after this many failed checks in a row. Default 3."
    )
    total: int = Field(
        default=5, ge=1, le=10000, description="Roll back after this many failed checks in all. Default 5."
    )


class Threshold(ApiModel):
    """Absolute bounds on the candidate's value. Error rate is a fraction (0.01 = 1%); latency is in seconds;
    a custom query is in its own unit."""

    min: float | None = Field(default=None, description="The value must be at least this.")
    max: float | None = Field(default=None, description="The value must be at most this.")

    @model_validator(mode="after")
    def _some_bound(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"`min` ({self.min}) is above `max` ({self.max}): no value could pass")
        return self


class Comparison(ApiModel):
    """Compare the candidate with stable on the same traffic period, instead of (or besides) a fixed number."""

    max_relative_degradation: float = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        description=(
            "How much worse than stable the candidate may be before it counts as a regression, as a fraction "
            "(0.2 = 20% more errors / slow requests). Default 0: any degradation the test can show."
        ),
    )
    sequential: bool = Field(
        default=True,
        description=(
            "Use the anytime-valid sequential test (builtin metrics): checked after every interval while the "
            "chance of a false rollback stays below `alpha`. Custom queries compare values by ratio only."
        ),
    )
    alpha: float | None = Field(
        default=None,
        gt=0.0,
        le=0.2,
        description="Significance level: the bound on the false-rollback probability. Default: analysis.alpha.",
    )
    early_stop: bool = Field(
        default=True,
        description=(
            "A step may end before its bake time once the test shows the candidate is no worse than stable "
            "(within `earlyStopMargin`), or, for an error rate with a `threshold.max`, once the candidate's "
            "error rate in the step is shown below that maximum (its SLO: rare errors cannot show a ratio "
            "soon). A regression within the SLO (errors x2 on a 0.1% baseline) is then left to the "
            "regression test over shorter steps; false keeps every step to its bake time. Default true."
        ),
    )
    early_stop_margin: float = Field(
        default=0.5,
        gt=0.0,
        le=10.0,
        description=(
            "With earlyStop, the evidence must show the candidate is less than (1 + margin) times stable. "
            "Default 0.5."
        ),
    )
    latency_edges: list[float] | None = Field(
        default=None,
        max_length=8,
        description=(
            "Latency thresholds in seconds for the slow-request comparison. Default: the histogram bucket "
            "edges just above stable's p50, p90 and p99 when the rollout starts."
        ),
    )


class Metric(ApiModel):
    """One signal the analysis looks at: a builtin or a custom PromQL template."""

    name: NameStr = Field(description="Unique name of the metric within the policy.")
    builtin: BuiltinMetric | None = Field(default=None, description="errorRate or latency.")
    quantile: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="For builtin latency with a threshold: the quantile compared with it. Default 0.99.",
    )
    query: str | None = Field(
        default=None,
        max_length=8192,
        description=(
            "Custom PromQL template. Variables: {{ namespace }}, {{ service }}, {{ revision }} (the revision "
            "being measured), {{ stable_revision }}, {{ canary_revision }}, {{ interval }}. The result must be "
            "one number. Values are escaped so that no variable can change the query."
        ),
    )
    threshold: Threshold | None = Field(default=None, description="Absolute bounds on the candidate's value.")
    compare: Comparison | None = Field(default=None, description="Comparison of the candidate with stable.")
    failure_limit: FailureLimit | None = Field(
        default=None, description="Override of analysis.failureLimit for this metric."
    )
    no_data: NoDataPolicy | None = Field(default=None, description="Override of analysis.noData.")
    min_requests: int | None = Field(
        default=None, ge=0, description="Override of analysis.minRequests for this metric."
    )
    dry_run: bool = Field(
        default=False, description="Report this metric in status, logs and /metrics, but never decide on it."
    )

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (self.builtin is None) == (self.query is None):
            raise ValueError("a metric sets exactly one of `builtin` or `query`")
        if self.threshold is None and self.compare is None:
            raise ValueError("a metric needs a `threshold`, a `compare` or both, or it can never decide")
        if self.quantile is not None and self.builtin != BuiltinMetric.LATENCY:
            raise ValueError("`quantile` applies only to `builtin: latency`")
        if self.compare is not None and self.compare.latency_edges and self.builtin != BuiltinMetric.LATENCY:
            raise ValueError("`compare.latencyEdges` applies only to `builtin: latency`")
        if self.builtin == BuiltinMetric.ERROR_RATE and self.threshold is not None:
            for bound in ("min", "max"):
                value = getattr(self.threshold, bound)
                if value is not None and not 0.0 <= value <= 1.0:
                    raise field_error(
                        f"an error rate is a fraction between 0 and 1, so `{bound}` {value:g} is out of range",
                        ("threshold", bound),
                        f"write {value / 100:g} for {value:g}%"
                        if 1 < value <= 100
                        else "use a value in 0..1",
                    )
        if self.query is not None:
            problems = template_problems(self.query)  # unknown or unquoted variables, malformed `{{`
            if problems:
                raise field_error(problems[0], ("query",))
        return self

    @property
    def effective_quantile(self) -> float:
        return self.quantile if self.quantile is not None else 0.99


def _default_metrics() -> list[Metric]:
    return [
        Metric(name="error-rate", builtin=BuiltinMetric.ERROR_RATE, compare=Comparison()),
        # No tolerance: at 0.1 only ~39% of a x1.2 latency regression is caught at 20 rps (docs/benchmark.md).
        Metric(name="latency", builtin=BuiltinMetric.LATENCY, compare=Comparison()),
    ]


MAX_NOT_READY_GRACE_SECONDS = 600.0


class LeaningHold(ApiModel):
    """A step whose evidence leans toward a regression waits for more before its bake time ends it."""

    p_value: float = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description=(
            "A comparison whose anytime-valid p-value for 'no regression' is at or below this leans toward a "
            "regression: the step's bake time does not end it while one does. Default 0.3; 0: never hold. "
            "Holding never raises the false-rollback rate (the comparisons stay valid however long they run)."
        ),
    )
    max_bakes: float = Field(
        default=3.0,
        ge=1.0,
        le=20.0,
        description=(
            "How long a leaning step may hold, in multiples of its bake time; past it the step ends as the "
            "bake would have ended it. Default 3."
        ),
    )


class Analysis(ApiModel):
    interval: Duration = Field(
        default=30.0,
        description="How often metrics are evaluated. Default 30s; at least twice the Prometheus scrape interval.",
    )
    warmup: Duration = Field(
        default=0.0,
        description=(
            "Time after a step's traffic is served before its analysis starts, so that new candidate pods "
            "starting up (Knative's activator buffering their first requests) are not judged as slowness. "
            "Default 0s."
        ),
    )
    not_ready_grace: Duration = Field(
        default=120.0,
        description=(
            "How long windows in which the candidate has fewer ready pods than Knative's autoscaler wants (new "
            "pods still starting) are left out of the comparison, per shortfall; past it, they are judged. "
            "Default 2m, at most 10m."
        ),
        json_schema_extra=at_most(MAX_NOT_READY_GRACE_SECONDS),
    )
    alpha: float = Field(
        default=0.01,
        gt=0.0,
        le=0.2,
        description="Default significance level of comparisons: bound on the false-rollback rate. Default 0.01.",
    )
    min_requests: int = Field(
        default=50,
        ge=0,
        description=(
            "Candidate requests needed in an interval before a threshold is judged; fewer counts as no data. "
            "Default 50."
        ),
    )
    min_step_requests: int = Field(
        default=50,
        ge=0,
        le=1_000_000,
        description=(
            "Candidate requests a step must have been analysed on before its bake time may end it: a quiet "
            "service waits for evidence instead of promoting on time alone (the status says how many it has "
            "seen; evidence that ends a step early is not affected). Default 50; 0: the bake time alone."
        ),
    )
    leaning_hold: LeaningHold = Field(
        default_factory=LeaningHold,
        description=(
            "Steps whose comparisons lean toward a regression wait for more evidence before they advance: "
            "more power against small regressions where traffic is thin, at the same exposure."
        ),
    )
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.WAIT,
        description="What no data means: wait (default; the step does not advance), pass or fail.",
    )
    failure_limit: FailureLimit = Field(
        default_factory=FailureLimit, description="Failed checks allowed before rollback (per metric)."
    )
    metrics: list[Metric] = Field(
        default_factory=_default_metrics,
        max_length=20,
        description=(
            "What is measured. Default: error rate and latency compared with stable by the sequential test."
        ),
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        check_at_most(
            self.not_ready_grace,
            MAX_NOT_READY_GRACE_SECONDS,
            "notReadyGrace",
            ("notReadyGrace",),
            "a candidate whose pods stay short longer than minutes is judged as it serves",
        )
        seen: set[str] = set()
        for m in self.metrics:
            if m.name in seen:
                raise ValueError(f"metric name {m.name!r} is used twice; names must be unique")
            seen.add(m.name)
        return self


# ---------------------------------------------------------------------------------------------- deadlines


class DeadlineAction(StrEnum):
    ROLLBACK = "rollback"
    PAUSE = "pause"


class Deadlines(ApiModel):
    candidate_ready: Duration = Field(
        default=600.0,
        description="How long a new revision may take to become Ready; after that the rollout fails "
        "with the revision's own message and no traffic moves. Default 10m.",
    )
    rollout: Duration = Field(default=7200.0, description="How long a whole rollout may take. Default 2h.")
    on_rollout_deadline: DeadlineAction = Field(
        default=DeadlineAction.ROLLBACK,
        description="What happens when the rollout deadline passes: rollback (default) or pause.",
    )
    keep_failed_candidate: Duration = Field(
        default=3600.0,
        description="How long a rolled-back, failed or aborted candidate stays reachable at 0% under the "
        "`canary` tag (its tag URL answers, for debugging); then it leaves the route, so Knative can scale "
        "the revision to zero. Default 1h; 0s: at once.",
    )


# ---------------------------------------------------------------------------------------------- webhooks


class WebhookType(StrEnum):
    PRE_ROLLOUT = "preRollout"  # before any traffic moves; failure ends the rollout (Failed)
    STEP = "step"  # once per weight step after its traffic applies; the step waits for it; failure rolls back
    CONFIRM_PROMOTION = "confirmPromotion"  # before promotion; the rollout waits until it answers 2xx
    POST_ROLLOUT = "postRollout"  # after promotion or rollback; informational
    ROLLBACK = "rollback"  # polled during analysis; 2xx asks for a rollback


# One attempt of a webhook call, and the whole call with its retries and waits: a hook never holds a
# rollout longer than this (rollout.controller.webhooks enforces the overall deadline).
MAX_WEBHOOK_TIMEOUT_SECONDS = 30.0
MAX_WEBHOOK_CALL_SECONDS = 60.0


class Webhook(ApiModel):
    name: NameStr
    type: WebhookType
    url: str = Field(
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Called with POST and a JSON body; the host must be one the admins allow "
        "(rollout controller --webhook-allow). No credentials in the URL: use `headers`.",
    )
    timeout: Duration = Field(
        default=10.0,
        description="Timeout of one attempt, at most 30s. Default 10s. The whole call, retries included, "
        "ends after at most 1m.",
        json_schema_extra=at_most(MAX_WEBHOOK_TIMEOUT_SECONDS),
    )
    retries: int = Field(default=2, ge=0, le=5, description="Retries after a failed call. Default 2.")
    headers: list[HeaderValue] = Field(
        default_factory=list,
        max_length=10,
        description="Extra HTTP headers, e.g. the receiver's credentials from a Secret of the policy's "
        'namespace that opts in (label knrollout.dev/metric-credentials: "true").',
    )
    metadata: dict[str, str] = Field(default_factory=dict, description="Extra fields sent in the body.")

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if "@" in self.url.split("/")[2]:
            raise field_error(
                "credentials in a webhook URL are refused",
                ("url",),
                "send them in `headers` with secretKeyRef (a Secret labelled knrollout.dev/metric-credentials)",
            )
        check_at_most(
            self.timeout,
            MAX_WEBHOOK_TIMEOUT_SECONDS,
            "a webhook's timeout",
            ("timeout",),
            "use a few seconds; a hook that needs longer should answer at once and be polled (rollback)",
        )
        return self


# ---------------------------------------------------------------------------------------------- policy


class RolloutPolicySpec(ApiModel):
    strategy: Strategy = Field(description="canary, blueGreen or abTest.")
    analysis: Analysis = Field(default_factory=Analysis, description="What is measured and how it decides.")
    metric_source: MetricSource = Field(default_factory=MetricSource, description="Where metrics come from.")
    deadlines: Deadlines = Field(default_factory=Deadlines, description="Time limits and what they do.")
    webhooks: list[Webhook] = Field(
        default_factory=list, max_length=20, description="Calls at rollout events."
    )
    notifications: list[Notification] = Field(
        default_factory=list,
        max_length=10,
        description="Where the rollout's events are sent: Slack, Teams, a JSON webhook or CloudEvents.",
    )
    history_limit: int = Field(
        default=10, ge=1, le=100, description="Finished Rollouts kept per Service. Default 10."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        for what, names in (
            ("webhook", [w.name for w in self.webhooks]),
            ("notification", [n.name for n in self.notifications]),
        ):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{what} names must be unique: {', '.join(sorted(dup))}")
        return self


class RolloutPolicyStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class ObjectMeta(ApiModel):
    """The parts of metadata our models read; everything else is kept by the API server."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: str = ""
    namespace: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class RolloutPolicy(ApiModel):
    api_version: Literal["knrollout.dev/v1alpha1"] = API_VERSION
    kind: Literal["RolloutPolicy"] = "RolloutPolicy"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RolloutPolicySpec
    status: RolloutPolicyStatus | None = None
