"""Cold starts: the candidate's pods, as Knative reports them, in the decision.

Knative starts a revision's pods when its share of traffic grows (its autoscaler wants more pods than are
ready), and the activator holds requests meanwhile: for a few seconds some of the candidate's requests wait.
That is Knative working, not the candidate regressing, and the stable revision (warm, its share shrinking)
never shows it. So:
- a step's clock starts only once the candidate has the pods its autoscaler wants (its min-scale included,
  which applies because the Pending candidate is already referenced at 0% under `canary`); the rollout's
  first step waits for them too, and a step ends only while they are ready;
- a window in which the candidate was short of pods is left out of the comparison (counted in
  status.excludedWindows), for at most analysis.notReadyGrace per shortfall: a candidate whose pods never
  come up is judged as it serves.

Pure: the status and the candidate's state in, the status out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from rollout.api.rollout import Phase, Rollout, RolloutStatus
from rollout.engine.inputs import Inputs
from rollout.engine.windows import analysis_since

_WATCHED = (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED)


def observe(status: RolloutStatus, inp: Inputs) -> RolloutStatus:
    """Record the candidate's pods and the shortfalls: one in progress (shortSince), the last that ended."""
    c = inp.candidate
    # the counts while short only: they change with every scaling step, and are news only then
    updates: dict[str, object] = {
        "candidate_pods": c.pods if c.short else None,
        "candidate_wanted_pods": c.wanted_pods if c.short else None,
    }
    since = status.short_since
    if status.phase not in _WATCHED:
        updates["short_since"] = None
    elif c.short and since is None:
        updates["short_since"] = inp.now
    elif not c.short and since is not None:
        updates.update({"short_since": None, "short_from": since, "short_until": inp.now})
    return status.model_copy(update=updates)


def short_of_pods(status: RolloutStatus) -> str | None:
    """Why the candidate is not ready for (more) traffic, or None when it has its pods."""
    if status.short_since is None:
        return None
    return (
        f"waiting for the candidate's pods: {status.candidate_pods} of {status.candidate_wanted_pods} ready"
    )


def _overlaps(start: datetime, end: datetime, since: datetime | None, until: datetime | None) -> bool:
    return since is not None and until is not None and since < end and until > start


def screen(rollout: Rollout, status: RolloutStatus, inp: Inputs) -> tuple[Inputs, RolloutStatus, str | None]:
    """Leave out a window the candidate spent (partly) short of pods, within analysis.notReadyGrace of the
    shortfall's start: the inputs without it, the status past it, and what was left out (for the log)."""
    update = inp.analysis
    if update is None:
        return inp, status, None
    analysis = rollout.spec.policy.spec.analysis
    if update.data_window is not None:
        start, end = update.data_window
    else:
        end = update.window_end
        start = analysis_since(rollout) or end - timedelta(seconds=analysis.interval)
    grace = timedelta(seconds=analysis.not_ready_grace)
    periods = ((status.short_from, status.short_until), (status.short_since, inp.now))
    for since, until in periods:
        if _overlaps(start, end, since, until) and since is not None and end - since <= grace:
            why = (
                f"window ending {end.isoformat()} left out: the candidate's new pods were starting during it"
            )
            skipped = status.model_copy(
                update={
                    "last_analysis_at": update.window_end,
                    "excluded_windows": status.excluded_windows + 1,
                }
            )
            return replace(inp, analysis=None), skipped, why
    return inp, status, None
