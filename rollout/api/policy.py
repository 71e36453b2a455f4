"""RolloutPolicy (knrollout.dev/v1alpha1): how a Knative Service is rolled out.

A Knative Service or a standalone Route opts in with the label `knrollout.dev/policy: <name>`; the policy lives
in the same namespace. Every default below is the safe choice and is written into the CRD's descriptions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from rollout.analysis.promql import template_problems
from rollout.api.common import API_VERSION, ApiModel, Condition, NameStr, field_error
from rollout.api.durations import Duration, at_most, check_at_most
from rollout.api.source import HeaderValue, MetricSource

Percent = Annotated[int, Field(ge=0, le=100)]


# ---------------------------------------------------------------------------------------------- strategy


class PauseStep(ApiModel):
    """A manual gate: the rollout waits here until `rollout resume` / `rollout promote` (or, with a duration,
    until the duration has passed)."""

    duration: Duration | None = Field(
        default=None,
        description="Wait this long, then continue by itself. Unset: wait for a person (rollout resume).",
    )


class CanaryStep(ApiModel):
    """One rung of the canary ladder: either a traffic weight for the candidate, or a pause."""

    weight: Percent | None = Field(
        default=None,
        description="Percent of traffic sent to the candidate during this step (0-100).",
    )
    bake: Duration | None = Field(
        default=None,
        description=(
            "Minimum time at this weight before the next step, while analysis runs. A comparison metric "
            "may end the step earlier once it has enough evidence that the candidate is no worse. "
            "Default: the canary's `interval`."
        ),
    )
    pause: PauseStep | None = Field(default=None, description="A manual gate instead of a weight.")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.weight is None) == (self.pause is None):
            raise ValueError("a step sets exactly one of `weight` (with optional `bake`) or `pause`")
        if self.pause is not None and self.bake is not None:
            raise ValueError("`bake` belongs to a weight step; a pause step takes `pause.duration`")
        return self


class CanaryStrategy(ApiModel):
    """Shift traffic to the candidate in steps, analysing at each step. Give either `steps` (an explicit
    ladder) or the shorthand `stepWeight` + `maxWeight` (+ `interval`)."""

    steps: list[CanaryStep] | None = Field(
        default=None,
        max_length=50,
        description="Explicit ladder; weights must strictly increase. After the last step the candidate is promoted.",
    )
    step_weight: Percent | None = Field(
        default=None, description="Shorthand: weight added at each step (requires maxWeight)."
    )
    max_weight: Percent | None = Field(
        default=None, description="Shorthand: last weight before promotion (requires stepWeight)."
    )
    interval: Duration = Field(
        default=60.0,
        description="Default bake time of a step (and the shorthand's step length). Default 1m.",
    )

    @model_validator(mode="after")
    def _ladder_or_shorthand(self) -> Self:
        shorthand = self.step_weight is not None or self.max_weight is not None
        if self.steps is not None and shorthand:
            raise ValueError("give either `steps` or `stepWeight`/`maxWeight`, not both")
        if self.steps is None and not shorthand:
            raise ValueError("give `steps` (an explicit ladder) or `stepWeight` and `maxWeight`")
        if shorthand and (self.step_weight is None or self.max_weight is None):
            raise ValueError("the shorthand needs both `stepWeight` and `maxWeight`")
        if self.step_weight is not None and self.step_weight < 1:
            raise ValueError("`stepWeight` must be at least 1")
        if self.steps is not None and not self.steps:
            raise ValueError("`steps` is empty: give at least one step")
        if self.max_weight is not None and self.max_weight < 1:
            raise field_error(
                "`maxWeight` 0 never sends traffic to the candidate, so nothing can be analysed",
                ("maxWeight",),
                "use at least 1, e.g. 50; blueGreen is the strategy that analyses without live traffic",
            )
        previous: tuple[int, int] | None = None  # (index, weight) of the previous weight step
        for index, step in enumerate(self.steps or []):
            if step.weight is None:
                continue
            if previous is not None and step.weight <= previous[1]:
                raise field_error(
                    f"weight {step.weight} is not above steps[{previous[0]}].weight ({previous[1]}): "
                    "the ladder's weights must strictly increase",
                    ("steps", index, "weight"),
                    "order the steps by weight and drop repeated weights; a longer `bake` keeps a weight longer",
                )
            previous = (index, step.weight)
        return self

    def ladder(self) -> list[CanaryStep]:
        """The steps this strategy runs, with the shorthand expanded and every bake time filled in."""
        if self.steps is not None:
            return [
                s.model_copy(update={"bake": self.interval}) if s.weight is not None and s.bake is None else s
                for s in self.steps
            ]
        assert self.step_weight is not None and self.max_weight is not None
        weights = list(range(self.step_weight, self.max_weight + 1, self.step_weight))
        if not weights or weights[-1] != self.max_weight:
            weights.append(self.max_weight)
        return [CanaryStep(weight=w, bake=self.interval) for w in weights]


class BlueGreenStrategy(ApiModel):
    """The candidate gets no share of live traffic; it is reachable only through its tag URL
    (`{previewTag}-{service}.{namespace}.{domain}`) while it is analysed, then switched to 100% at once."""

    preview_tag: NameStr = Field(default="preview", description="Tag giving the candidate its own URL.")
    analysis_duration: Duration = Field(
        default=300.0, description="How long the preview is analysed before the switch. Default 5m."
    )
    manual_promotion: bool = Field(
        default=False,
        description="Wait for `rollout promote` after a passing analysis instead of switching by itself.",
    )

    @model_validator(mode="after")
    def _tag_free(self) -> Self:
        if self.preview_tag in RESERVED_TAGS:
            raise ValueError(
                f"`previewTag` cannot be {self.preview_tag!r}: the controller uses that tag itself"
            )
        return self


# Tags the controller itself writes; strategy tags must not reuse them.
RESERVED_TAGS = frozenset({"stable", "latest", "canary"})


class AbRouting(StrEnum):
    HEADER = "header"
    SPLIT = "split"


class AbTestStrategy(ApiModel):
    """Two tagged arms analysed against each other: stable (control) and candidate (treatment). Requests reach
    an arm by the `Knative-Serving-Tag` header (routing: header; needs Knative's tag-header-based-routing
    feature) or by a percent split (routing: split)."""

    routing: AbRouting = Field(default=AbRouting.HEADER, description="`header` or `split`.")
    control_tag: NameStr = Field(default="control", description="Tag of the stable arm.")
    treatment_tag: NameStr = Field(default="treatment", description="Tag of the candidate arm.")
    split_percent: Percent = Field(
        default=50, description="With routing: split, the percent of traffic sent to the candidate."
    )
    duration: Duration = Field(default=3600.0, description="How long the experiment runs. Default 1h.")
    promote_on_success: bool = Field(
        default=False,
        description="Promote the candidate by itself when the experiment passes; default: wait for a person.",
    )

    @model_validator(mode="after")
    def _tags(self) -> Self:
        for field, tag in (("controlTag", self.control_tag), ("treatmentTag", self.treatment_tag)):
            if tag in RESERVED_TAGS:
                raise ValueError(f"`{field}` cannot be {tag!r}: the controller uses that tag itself")
        if self.control_tag == self.treatment_tag:
            raise ValueError("`controlTag` and `treatmentTag` must differ")
        if self.routing == AbRouting.SPLIT and not 0 < self.split_percent < 100:
            raise ValueError("with routing: split, `splitPercent` must be between 1 and 99")
        return self


class Strategy(ApiModel):
    """Exactly one of canary, blueGreen, abTest."""

    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    ab_test: AbTestStrategy | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [
            n
            for n, v in (("canary", self.canary), ("blueGreen", self.blue_green), ("abTest", self.ab_test))
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "set exactly one strategy: `canary`, `blueGreen` or `abTest`"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> Literal["canary", "blueGreen", "abTest"]:
        if self.canary is not None:
            return "canary"
        if self.blue_green is not None:
            return "blueGreen"
        return "abTest"


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
            "(within `earlyStopMargin`). false: steps always wait their full bake time. Default true."
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
    history_limit: int = Field(
        default=10, ge=1, le=100, description="Finished Rollouts kept per Service. Default 10."
    )

    @model_validator(mode="after")
    def _unique_webhooks(self) -> Self:
        names = [w.name for w in self.webhooks]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"webhook names must be unique: {', '.join(sorted(dup))}")
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
