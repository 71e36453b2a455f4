"""Onboarding: what a target's traffic block says about who is stable, and whether the controller may
manage it. Pure functions over spec.traffic and status.traffic.

- Managed: an entry tagged `stable` names a revision and carries all the traffic (the cluster is the
  memory: that revision is stable).
- Adopt: the target has not been pinned yet and serves one revision at 100%; that revision is stable and the
  controller pins it (`plans.pinned`), keeping users' extra 0% tags.
- Unmanageable: traffic is split in a way the controller did not write (e.g. a hand-made three-way split);
  reported in a condition and an Event, and left alone.
- Waiting: Knative does not serve anything yet (first revision still deploying).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.controller.views import TargetView, entries_summary
from rollout.engine.plans import CANARY_TAG, LATEST_TAG, STABLE_TAG


@dataclass(frozen=True)
class Managed:
    stable: str


@dataclass(frozen=True)
class Adopt:
    stable: str


@dataclass(frozen=True)
class Unmanageable:
    reason: str


@dataclass(frozen=True)
class Waiting:
    reason: str


Layout = Managed | Adopt | Unmanageable | Waiting

ROLLOUT_TAGS = frozenset({STABLE_TAG, CANARY_TAG, LATEST_TAG})


def normalize_entry(entry: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """An entry as Knative's defaulting leaves it (latestRevision filled in, percent 0 when absent, no url),
    as a comparable value."""
    revision = str(entry.get("revisionName") or "")
    latest = entry.get("latestRevision")
    out: dict[str, Any] = {
        "revisionName": revision,
        "latestRevision": (not revision) if latest is None else bool(latest),
        "percent": int(entry.get("percent") or 0),
        "tag": str(entry.get("tag") or ""),
        "configurationName": str(entry.get("configurationName") or ""),
    }
    return tuple(sorted(out.items()))


def same_traffic(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    """Two traffic blocks route the same way (entry order does not matter to Knative)."""
    return sorted(map(normalize_entry, a)) == sorted(map(normalize_entry, b))


def _served_single(status_traffic: Sequence[Mapping[str, Any]]) -> str | None:
    percents: dict[str, int] = {}
    for e in status_traffic:
        name = str(e.get("revisionName") or "")
        if name and int(e.get("percent") or 0) > 0:
            percents[name] = percents.get(name, 0) + int(e.get("percent") or 0)
    if len(percents) == 1:
        return next(iter(percents))
    return None


def classify(view: TargetView, rollout_tags: frozenset[str] = ROLLOUT_TAGS) -> Layout:
    """The layout of a target that has no active rollout. `rollout_tags` are the tags a rollout may leave
    with traffic (stable, canary and the strategy's own tags): a split only among those is an interrupted
    rollout whose record is gone, which the controller may pin back to stable."""
    entries = view.spec_traffic
    live = [e for e in entries if int(e.get("percent") or 0) > 0]
    stable_entries = [e for e in entries if e.get("tag") == STABLE_TAG and e.get("revisionName")]
    if stable_entries:
        stable = str(stable_entries[0]["revisionName"])
        if all(e.get("tag") in rollout_tags for e in live) and len(stable_entries) == 1:
            return Managed(stable)
        return Unmanageable(
            f"spec.traffic sends traffic to entries the controller does not manage ({entries_summary(live)}); "
            "remove them or set them to 0%"
        )
    if len(live) > 1:
        return Unmanageable(
            f"spec.traffic splits traffic between {len(live)} entries ({entries_summary(live)}); the controller "
            "can only take over a target that serves one revision at 100%: set traffic to a single revision "
            "(or remove the traffic block), and it will pin it as stable"
        )
    if len(live) == 1 and live[0].get("revisionName"):
        name = str(live[0]["revisionName"])
        served = _served_single(view.status_traffic)
        if served == name:
            return Adopt(name)
        return Waiting(f"waiting for Knative to serve revision {name} (status.traffic does not show it yet)")
    served = _served_single(view.status_traffic)
    if served is None:
        return Waiting("Knative serves no single revision at 100% yet (first revision still deploying?)")
    return Adopt(served)
