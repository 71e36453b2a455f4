"""When a rollout's analysis windows may start, and when the next one is due. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from rollout.api.rollout import Phase, Rollout


def analysis_since(rollout: Rollout, *, whole_seconds: bool = False) -> datetime | None:
    """Analysis windows may start from here: the step's traffic served plus the policy's warm-up, or the end of
    the last window analysed if later. None while analysis does not run (not Progressing/Paused, or the step's
    traffic is not served yet). `whole_seconds`: the warm-up's end rounded up to a whole second, as the
    scheduler aligns windows (status times are stored with whole seconds: a step that started at 10.7 s reads
    back as 10 s, so its windows must start no earlier than 11 s)."""
    status = rollout.status
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or not status.traffic_applied:
        return None
    if status.step_started_at is None:
        return None
    warmed = status.step_started_at + timedelta(seconds=rollout.spec.policy.spec.analysis.warmup)
    if whole_seconds and warmed.microsecond:
        warmed = warmed.replace(microsecond=0) + timedelta(seconds=1)
    return max(warmed, status.last_analysis_at) if status.last_analysis_at is not None else warmed


def analysis_due(rollout: Rollout, now: datetime) -> bool:
    """An analysis tick is due: analysis runs and one interval has passed since `analysis_since`."""
    since = analysis_since(rollout)
    interval = timedelta(seconds=rollout.spec.policy.spec.analysis.interval)
    return since is not None and now - since >= interval
