"""Revision garbage collection (pure), after Knative's config-gc.

Per Configuration, revisions that are routed (routingState active), the latest created and the latest ready
are always kept. Of the others ("non-active"), the newest `min_non_active` are kept; older ones are deleted
once they have been unrouted for `retain_since_last_active` seconds; beyond `max_non_active` the oldest are
deleted regardless. Knative's defaults: keep 20, 15h unrouted, at most 1000.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout_lab.sandbox.knative import names
from rollout_lab.sandbox.knative.service import meta


@dataclass(frozen=True)
class GcSettings:
    min_non_active: int = 20
    max_non_active: int = 1000
    retain_since_last_active: float = 15 * 3600.0


def _generation(revision: Mapping[str, Any]) -> int:
    try:
        return int((meta(revision).get("labels") or {}).get(names.CONFIGURATION_GENERATION_LABEL, 0))
    except ValueError:
        return 0


def _routing_modified(revision: Mapping[str, Any]) -> float | None:
    stamp = (meta(revision).get("annotations") or {}).get(names.ROUTING_STATE_MODIFIED_ANNOTATION)
    if not stamp:
        return None
    try:
        return dt.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def _non_active(
    configuration: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The revisions GC may delete, newest first."""
    status = configuration.get("status") or {}
    protected = {status.get("latestCreatedRevisionName"), status.get("latestReadyRevisionName")}
    non_active = [
        r
        for r in revisions
        if meta(r).get("name") not in protected
        and (meta(r).get("labels") or {}).get(names.ROUTING_STATE_LABEL) != names.ROUTING_ACTIVE
    ]
    non_active.sort(key=_generation, reverse=True)
    return non_active


def revisions_to_collect(
    configuration: Mapping[str, Any],
    revisions: Sequence[Mapping[str, Any]],
    settings: GcSettings,
    now: float,
) -> list[str]:
    """Names of this Configuration's revisions to delete now."""
    non_active = _non_active(configuration, revisions)
    doomed = []
    for index, revision in enumerate(non_active):
        if index < settings.min_non_active:
            continue
        if index >= settings.max_non_active:
            doomed.append(str(meta(revision).get("name")))
            continue
        modified = _routing_modified(revision)
        if modified is not None and now - modified >= settings.retain_since_last_active:
            doomed.append(str(meta(revision).get("name")))
    return doomed


def next_collection(
    configuration: Mapping[str, Any],
    revisions: Sequence[Mapping[str, Any]],
    settings: GcSettings,
    now: float,
) -> float | None:
    """The next moment one of these revisions becomes old enough to collect, if nothing else changes
    (None: never)."""
    moments = []
    for index, revision in enumerate(_non_active(configuration, revisions)):
        if settings.min_non_active <= index < settings.max_non_active:
            modified = _routing_modified(revision)
            if modified is not None and modified + settings.retain_since_last_active > now:
                moments.append(modified + settings.retain_since_last_active)
    return min(moments, default=None)
