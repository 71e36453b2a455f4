"""Every strategy as one list of engine steps: traffic steps (a weight held while analysis runs) and gates
(wait for a person, or for a duration). The state machine only knows this list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rollout.api.policy import RolloutPolicySpec
from rollout.api.strategy import AbRouting, InconclusiveAction


class Layout(StrEnum):
    """How the candidate is wired into the traffic block during a traffic step."""

    CANARY = "canary"  # candidate gets `weight` percent under tag `canary`
    PREVIEW = "preview"  # blue/green: candidate at 0% under its preview tag, reached by the tag URL
    AB_HEADER = "abHeader"  # A/B: arms under their tags at 0%, reached by the Knative-Serving-Tag header
    AB_SPLIT = "abSplit"  # A/B: treatment arm gets `weight` percent


@dataclass(frozen=True)
class EngineStep:
    kind: str  # "traffic" | "gate"
    weight: int = 0  # candidate percent (traffic steps; gates hold the previous step's weight)
    bake: float = 0.0  # minimum seconds at this step (traffic steps)
    gate_duration: float | None = None  # gates: continue by itself after this long; None waits for a person
    early_stop: bool = False  # a comparison showing "no worse" may end the step before `bake`
    layout: Layout = Layout.CANARY
    name: str = ""
    # the decisive step (its end would promote): what a comparison still inconclusive at its end means
    on_inconclusive: InconclusiveAction | None = None
    # a probe (canary.probe) looks for regressions only: its bake ends it without data or minStepRequests
    probe: bool = False

    @property
    def is_gate(self) -> bool:
        return self.kind == "gate"


def step_at(steps: Sequence[EngineStep], index: int) -> EngineStep:
    """The step a status's `currentStep` names (a promoting or finished rollout stays on the last one)."""
    return steps[min(index, len(steps) - 1)]


def engine_steps(policy: RolloutPolicySpec) -> list[EngineStep]:
    strategy = policy.strategy
    if strategy.canary is not None:
        out: list[EngineStep] = []
        weight = 0
        probe = strategy.canary.probe
        if probe is not None:
            weight = probe.weight
            out.append(
                EngineStep(
                    kind="traffic",
                    weight=probe.weight,
                    bake=probe.bake or strategy.canary.interval,
                    early_stop=True,
                    name=f"probe-{probe.weight}",
                    probe=True,
                )
            )
        for i, step in enumerate(strategy.canary.ladder()):
            if step.pause is not None:
                out.append(
                    EngineStep(
                        kind="gate", weight=weight, gate_duration=step.pause.duration, name=f"pause-{i}"
                    )
                )
            else:
                weight = step.weight or 0
                out.append(
                    EngineStep(
                        kind="traffic",
                        weight=weight,
                        bake=step.bake or 0.0,
                        early_stop=True,
                        name=f"weight-{weight}",
                    )
                )
        if not out[-1].is_gate:
            out[-1] = replace(out[-1], on_inconclusive=strategy.canary.on_inconclusive)
        return out
    if strategy.blue_green is not None:
        bg = strategy.blue_green
        steps = [
            EngineStep(
                kind="traffic",
                weight=0,
                bake=bg.analysis_duration,
                layout=Layout.PREVIEW,
                name="preview",
                on_inconclusive=None if bg.manual_promotion else bg.on_inconclusive,
            )
        ]
        if bg.manual_promotion:
            steps.append(EngineStep(kind="gate", weight=0, layout=Layout.PREVIEW, name="confirm-switch"))
        return steps
    ab = strategy.ab_test
    assert ab is not None
    split = ab.routing == AbRouting.SPLIT
    layout = Layout.AB_SPLIT if split else Layout.AB_HEADER
    weight = ab.split_percent if split else 0
    decisive = ab.on_inconclusive if ab.promote_on_success else None
    steps = [
        EngineStep(
            kind="traffic",
            weight=weight,
            bake=ab.duration,
            layout=layout,
            name="experiment",
            on_inconclusive=decisive,
        )
    ]
    if not ab.promote_on_success:
        steps.append(EngineStep(kind="gate", weight=weight, layout=layout, name="decision"))
    return steps
