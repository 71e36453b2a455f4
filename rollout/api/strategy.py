"""The rollout strategies of a RolloutPolicy (knrollout.dev/v1alpha1): canary, blue/green, A/B test. Each
becomes a list of engine steps (rollout.engine.steps)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from rollout.api.common import ApiModel, NameStr, field_error
from rollout.api.durations import Duration

Percent = Annotated[int, Field(ge=0, le=100)]


class InconclusiveAction(StrEnum):
    """What the decisive step (the one whose end would promote) does when a comparison is still
    inconclusive at the end of its bake: it showed neither a regression nor that the candidate is no worse."""

    HOLD = "hold"  # pause for a person: `rollout promote` or `rollout abort`
    PROMOTE = "promote"
    ROLLBACK = "rollback"


def _on_inconclusive(default: InconclusiveAction, when: str, why: str) -> InconclusiveAction:
    return Field(
        default=default,
        description=(
            f"What happens when {when} ends with a comparison still inconclusive (neither a regression nor "
            "evidence that the candidate is no worse): hold (pause until a person runs `rollout promote` or "
            f"`rollout abort`), promote, or rollback. Default {default.value}: {why}"
        ),
    )


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


class ProbeStep(ApiModel):
    """A small share before the ladder's first step: a clear regression shows there on a handful of
    requests, before the first step exposes ten times as many users."""

    weight: Annotated[int, Field(ge=1, le=99)] = Field(
        default=1,
        description="Percent of traffic sent to the candidate during the probe (1-99, below the first step's).",
    )
    bake: Duration | None = Field(
        default=None,
        description=(
            "How long the probe lasts (longer while its evidence leans toward a regression, as any step). "
            "It does not wait for analysis.minStepRequests, and waits for data at most three times its bake: "
            "on a quiet service it sees almost nothing, and the ladder's steps still need their evidence. "
            "Default: the canary's `interval`."
        ),
    )


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
    probe: ProbeStep | None = Field(
        default=None,
        description=(
            "A probe before the first step: a small share (default 1%) for one step's time, so that a clear "
            "regression is rolled back before the first step's share meets it. Unset: no probe."
        ),
    )
    on_inconclusive: InconclusiveAction = _on_inconclusive(
        InconclusiveAction.PROMOTE,
        "the last step of the ladder",
        "every step had fresh data, no step showed a regression at `alpha`, and the guardrails held. Earlier "
        "steps always advance; more traffic brings more evidence.",
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
        self._probe_below_first_step()
        return self

    def _probe_below_first_step(self) -> None:
        if self.probe is None:
            return
        first = next((s.weight for s in self.ladder() if s.weight is not None), None)
        if first is None or self.probe.weight >= first:
            raise field_error(
                f"the probe's weight {self.probe.weight} is not below the first step's weight ({first})",
                ("probe", "weight"),
                "a probe is a smaller share before the ladder: e.g. weight 1 before a first step of 10",
            )

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
    on_inconclusive: InconclusiveAction = _on_inconclusive(
        InconclusiveAction.PROMOTE,
        "the preview's analysis (without manualPromotion)",
        "no regression was seen at `alpha` and the guardrails held, as at the end of a canary ladder.",
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
    on_inconclusive: InconclusiveAction = _on_inconclusive(
        InconclusiveAction.HOLD,
        "the experiment (with promoteOnSuccess)",
        "an experiment passes only on evidence that the treatment is no worse, so a person decides.",
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
    prewarm: bool = Field(
        default=True,
        description=(
            "Before the candidate's share grows, raise its min-scale (an annotation on its Revision, which "
            "Knative passes to its autoscaler) to the share of the pods the stable revision ran before the "
            "rollout, and give the share once those pods are ready (at most analysis.notReadyGrace); the "
            "Revision's own min-scale comes back when the rollout ends. false: Knative scales the candidate "
            "as its traffic arrives, with cold starts at each step. Default true."
        ),
    )

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
