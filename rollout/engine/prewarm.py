"""Pre-warming (strategy.prewarm): the candidate gets the pods a share needs before it gets the share.

Knative starts a revision's pods when its traffic grows; until they are up, the activator holds requests and
some of them wait (rollout.engine.capacity leaves those windows out of the comparison). A step that raises the
candidate from 10% to 50% of a busy service's traffic would put that wait on the candidate's users at every
step. So when a step may end (and before the first share), the rollout first holds the candidate at a
min-scale (written on its Revision by the controller, rollout.knative.minscale) of the pods the next share
needs, and gives the share once they are ready:
- the pods a share needs are that share of the pods the stable revision ran when the rollout started, when it
  served all the traffic: ceil(stableBefore x share / 100), at most the candidate's max-scale;
- the next share is the next traffic step's weight, or 100% when the step's end promotes; a gate next (a
  person or a timer decides) warms nothing;
- it waits at most analysis.notReadyGrace for the pods, and at most WAIT_FOR_KNATIVE seconds for Knative to
  want them (desiredReplicas; a Knative that does not pass a Revision's annotations to its autoscaler never
  does). Past either, the hold is dropped and the share is given as before: pods that cannot start (a quota, a
  full cluster) never stall a rollout;
- the hold stays while the rollout runs (the next share needs at least as many pods), and ends with it.

Pure: the status and the inputs in, the status and a reason to wait out.
"""

from __future__ import annotations

import math

from rollout.api.durations import format_duration
from rollout.api.rollout import TERMINAL_PHASES, Phase, RolloutStatus
from rollout.engine.inputs import Inputs
from rollout.engine.steps import EngineStep

WAIT_FOR_KNATIVE = 30.0  # seconds: Knative's autoscaler reacts to a new min-scale within a tick or two


def next_share(steps: list[EngineStep], status: RolloutStatus) -> int | None:
    """The candidate's share once the current step ends (before the first one, while Pending); None when its
    end raises no share now."""
    if status.phase == Phase.PENDING:
        first = steps[0]
        return first.weight if not first.is_gate and first.weight > 0 else None
    if status.phase != Phase.PROGRESSING:
        return None
    index = min(status.current_step, len(steps) - 1)
    if index + 1 >= len(steps):
        return 100  # the decisive step: its end promotes
    following = steps[index + 1]
    if following.is_gate or following.weight <= steps[index].weight:
        return None
    return following.weight


def pods_for(share: int, before: int, ceiling: int | None) -> int:
    """The pods a share of the traffic needs: that share of the pods that served all of it."""
    wanted = math.ceil(before * share / 100)
    return min(wanted, ceiling) if ceiling else wanted


def observe(
    status: RolloutStatus, steps: list[EngineStep], inp: Inputs, due: bool, grace: float
) -> tuple[RolloutStatus, str | None]:
    """Record the stable's pods at the start, and the hold the next share needs once the step may end
    (`due`); with a note when a hold is dropped because the pods did not come."""
    updates: dict[str, object] = {}
    if status.stable_pods_before is None and inp.stable_pods is not None:
        updates["stable_pods_before"] = inp.stable_pods
    status = status.model_copy(update=updates) if updates else status
    if status.phase in TERMINAL_PHASES or not inp.rollout.spec.policy.spec.strategy.prewarm:
        return clear(status), None
    if not due:
        return status.model_copy(update={"prewarm_since": None}), None
    before = status.stable_pods_before
    share = next_share(steps, status)
    if share is None or not before:
        return status.model_copy(update={"prewarm_since": None}), None
    wanted = pods_for(share, before, inp.candidate.max_pods)
    pods = inp.candidate.pods or 0
    since = status.prewarm_since or inp.now
    if pods >= wanted:  # the pods are there (a hold of an earlier step stays: the share only grows)
        return status.model_copy(update={"prewarm_since": None}), None
    elapsed = (inp.now - since).total_seconds()
    knative_wants = (inp.candidate.wanted_pods or 0) >= wanted
    if elapsed >= grace or (not knative_wants and elapsed >= WAIT_FOR_KNATIVE):
        note = None
        if status.prewarm_pods is not None:
            why = (
                "the pods did not become ready" if knative_wants else "Knative's autoscaler did not want them"
            )
            note = (
                f"pre-warming the candidate for {share}% stopped after {format_duration(int(elapsed))}: "
                f"{pods} of {wanted} pods ready and {why}; the share is given without them"
            )
        return status.model_copy(update={"prewarm_pods": None, "prewarm_since": since}), note
    held = max(status.prewarm_pods or 0, wanted)
    return status.model_copy(update={"prewarm_pods": held, "prewarm_since": since}), None


def capped(status: RolloutStatus, steps: list[EngineStep], inp: Inputs, due: bool) -> str | None:
    """Why the candidate cannot have the pods its next share needs, when its max-scale is below them: said
    once, as that share falls due (before a hold for it starts), whether or not the policy pre-warms. A
    revision whose max-scale is below what the stable needed may serve the share from fewer pods (and fail
    on it, which the comparison then sees); the person reading the rollout should know why."""
    ceiling = inp.candidate.max_pods
    before = status.stable_pods_before or inp.stable_pods
    if not due or status.prewarm_since is not None or not ceiling or not before:
        return None
    share = next_share(steps, status)
    if share is None:
        return None
    need = pods_for(share, before, None)
    if need <= ceiling:
        return None
    return (
        f"the candidate's max-scale {ceiling} keeps it below the {need} pods {share}% of the traffic needs "
        f"(the stable revision ran {before} when the rollout started); it will serve that share from at most "
        f"{ceiling}"
    )


def waiting(status: RolloutStatus, inp: Inputs) -> str | None:
    """Why the next share waits for pre-warmed pods, or None."""
    held, since = status.prewarm_pods, status.prewarm_since
    pods = inp.candidate.pods or 0
    if held is None or since is None or pods >= held:
        return None
    return f"pre-warming the candidate for its next share: {pods} of {held} pods ready"


def clear(status: RolloutStatus) -> RolloutStatus:
    """No hold: the rollout ended (or pre-warming is off)."""
    if status.prewarm_pods is None and status.prewarm_since is None:
        return status
    return status.model_copy(update={"prewarm_pods": None, "prewarm_since": None})
