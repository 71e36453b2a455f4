"""Traffic plans: the exact spec.traffic entries the controller manages for a rollout in a given state.

Weights always sum to 100 and the candidate never gets more than the current step's weight. Entries are
explicit revision names (never `latestRevision` with a non-zero percent), so a revision that appears in the
middle of a rollout cannot receive traffic it was not analysed for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rollout.api.policy import RolloutPolicySpec
from rollout.api.rollout import Phase, TrafficEntry
from rollout.engine.observations import ObservedTraffic
from rollout.engine.steps import EngineStep, Layout, step_at

STABLE_TAG = "stable"
LATEST_TAG = "latest"
CANARY_TAG = "canary"
MANAGED_TAGS = frozenset({STABLE_TAG, LATEST_TAG, CANARY_TAG})


@dataclass(frozen=True)
class TrafficPlan:
    entries: tuple[TrafficEntry, ...]

    def percents(self) -> dict[str, int]:
        """revision name -> percent, for revisions with a non-zero share."""
        out: dict[str, int] = {}
        for e in self.entries:
            if e.revision_name and e.percent:
                out[e.revision_name] = out.get(e.revision_name, 0) + e.percent
        return out

    def tags(self) -> dict[str, str]:
        """tag -> revision name, for the entries that name a revision."""
        return {e.tag: e.revision_name for e in self.entries if e.tag and e.revision_name}

    def to_knative(self) -> list[dict[str, object]]:
        return [e.to_wire() for e in self.entries]


def _rev(name: str, percent: int, tag: str | None) -> TrafficEntry:
    return TrafficEntry(revision_name=name, percent=percent, tag=tag)


def _latest() -> TrafficEntry:
    return TrafficEntry(latest_revision=True, percent=0, tag=LATEST_TAG)


def pinned(stable: str) -> TrafficPlan:
    """Onboarding / idle: stable at 100% under `stable`, the latest ready revision reachable at 0%."""
    return TrafficPlan((_rev(stable, 100, STABLE_TAG), _latest()))


def with_candidate_parked(stable: str, candidate: str) -> TrafficPlan:
    """Stable at 100%, the candidate reachable at 0% under `canary` (for its URL, min-scale, debugging)."""
    return TrafficPlan((_rev(stable, 100, STABLE_TAG), _rev(candidate, 0, CANARY_TAG), _latest()))


def promoted(candidate: str) -> TrafficPlan:
    return TrafficPlan((_rev(candidate, 100, STABLE_TAG), _latest()))


def step_plan(policy: RolloutPolicySpec, step: EngineStep, stable: str, candidate: str) -> TrafficPlan:
    w = step.weight
    if step.layout == Layout.CANARY:
        return TrafficPlan((_rev(stable, 100 - w, STABLE_TAG), _rev(candidate, w, CANARY_TAG), _latest()))
    if step.layout == Layout.PREVIEW:
        bg = policy.strategy.blue_green
        tag = bg.preview_tag if bg is not None else CANARY_TAG
        return TrafficPlan((_rev(stable, 100, STABLE_TAG), _rev(candidate, 0, tag), _latest()))
    ab = policy.strategy.ab_test
    assert ab is not None
    return TrafficPlan(
        (
            _rev(stable, 100 - w, STABLE_TAG),
            _rev(candidate, w, ab.treatment_tag),
            _rev(stable, 0, ab.control_tag),
            _latest(),
        )
    )


def plan_for(
    policy: RolloutPolicySpec,
    steps: Sequence[EngineStep],
    phase: Phase,
    current_step: int,
    stable: str,
    candidate: str,
    candidate_ready: bool,
    *,
    park_candidate: bool = True,
) -> TrafficPlan:
    """The plan of a rollout in `phase` at `current_step`. A rollout that ended without promotion keeps its
    (Ready) candidate reachable at 0% under `canary` unless `park_candidate` is False."""
    if phase in (Phase.SUCCEEDED, Phase.PROMOTING):
        return promoted(candidate)
    if phase in (Phase.PROGRESSING, Phase.PAUSED):
        if not steps:
            return with_candidate_parked(stable, candidate)
        step = step_at(steps, current_step)
        return step_plan(policy, step, stable, candidate)
    if phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED) and candidate_ready and park_candidate:
        return with_candidate_parked(stable, candidate)
    if phase == Phase.PENDING and park_candidate:
        # referenced before its first step, so that Knative applies its min-scale (a revision no route
        # references is scaled as `reserve`, min-scale ignored) and its pods are up before it gets traffic
        return with_candidate_parked(stable, candidate)
    return pinned(stable)


def plan_applied(plan: TrafficPlan, observed: ObservedTraffic | None) -> bool:
    """Knative serves the plan: the Service/Route is Ready and status.traffic shows the same split and tags."""
    if observed is None or not observed.ready:
        return False
    want = {k: v for k, v in plan.percents().items() if v}
    got = {k: v for k, v in observed.percents.items() if v}
    if want != got:
        return False
    return all(observed.tags.get(tag) == rev for tag, rev in plan.tags().items())


def merge_user_entries(plan: TrafficPlan, current: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The spec.traffic to write: the plan, plus entries users added (0% tags the controller does not manage)."""
    ours = {e.tag for e in plan.entries if e.tag}
    kept = [
        dict(entry)
        for entry in current
        if entry.get("tag")
        and entry.get("tag") not in ours
        and entry.get("tag") not in MANAGED_TAGS
        and not entry.get("percent")
    ]
    return plan.to_knative() + kept
