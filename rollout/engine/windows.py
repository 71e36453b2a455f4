"""When a rollout's analysis windows may start, and when the next one is due. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from rollout.api.rollout import Phase, Rollout


def analysis_since(rollout: Rollout) -> datetime | None:
    """Analysis windows may start from here: the step's traffic served plus the policy's warm-up, or the end of
    the last window analysed if later. None while analysis does not run (not Progressing/Paused, or the step's
    traffic is not served yet)."""
    status = rollout.status
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or not status.traffic_applied:
        return None
    if status.step_started_at is None:
        return None
    warmed = status.step_started_at + timedelta(seconds=rollout.spec.policy.spec.analysis.warmup)
    return max(warmed, status.last_analysis_at) if status.last_analysis_at is not None else warmed


def analysis_due(rollout: Rollout, now: datetime) -> bool:
    """An analysis tick is due: analysis runs and one interval has passed since `analysis_since`."""
    since = analysis_since(rollout)
    interval = timedelta(seconds=rollout.spec.policy.spec.analysis.interval)
    return since is not None and now - since >= interval
