"""When the controller first saw each target serve its current split: the informer event that showed it, not
the reconcile that got to it. A step's bake counts from that moment (rollout.engine.machine), so a controller
that falls behind under a wave of changes does not stretch every bake by its own delay."""

from __future__ import annotations

from datetime import datetime

from rollout.controller.views import ObjectKey, observed_traffic, target_view
from rollout.engine.observations import ObservedTraffic
from rollout.kube.client import Obj

Served = tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...], bool]


def served_split(traffic: ObservedTraffic) -> Served:
    return (tuple(sorted(traffic.percents.items())), tuple(sorted(traffic.tags.items())), traffic.ready)


class ServedClock:
    """Per target: the split it serves (status.traffic, Ready for its generation) and since when it was seen.
    Kept in memory only: after a restart the first look counts, which can only make a bake longer."""

    def __init__(self) -> None:
        self._seen: dict[ObjectKey, tuple[Served, datetime]] = {}

    def note(self, kind: str, obj: Obj, now: datetime) -> None:
        """An informer event for a target (kind: ADDED, MODIFIED, RESYNC, DELETED)."""
        view = target_view(obj)
        key = view.key
        if kind == "DELETED":
            self._seen.pop(key, None)
            return
        split = served_split(observed_traffic(view))
        known = self._seen.get(key)
        if known is None or known[0] != split:
            self._seen[key] = (split, now)

    def since(self, key: ObjectKey, traffic: ObservedTraffic) -> datetime | None:
        """When `traffic` was first seen served by the target; None when it is not served or not what was
        last seen (e.g. a fresher object read from the API server)."""
        known = self._seen.get(key)
        if known is None or not traffic.ready or known[0] != served_split(traffic):
            return None
        return known[1]

    def __len__(self) -> int:
        return len(self._seen)
