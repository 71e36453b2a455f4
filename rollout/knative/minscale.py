"""The min-scale the controller holds a candidate Revision at while it pre-warms it (strategy.prewarm), as
annotations on the Revision, and how they are undone.

Knative copies a Revision's `autoscaling.knative.dev/*` annotations to its PodAutoscaler, and a Revision's
metadata annotations are mutable (its spec is not): raising `min-scale` on the Revision starts pods without
a new Revision (knative/serving docs/scaling "Scale Bounds"; knative/serving#16186, "Allow adjusting
Revision min/max scale annotations"). Knative applies min-scale only to a Revision a route references, which
the controller does from the moment the candidate exists (at 0% under `canary`).

While the hold is in place the Revision also carries `knrollout.dev/min-scale-before`: its own canonical
`min-scale` value ("" when it had none), which comes back when the hold ends. The annotation lives on the
Revision so that whoever ends the hold (this controller after a restart, or another replica) can restore it
without any memory of its own. Readers of a Revision's configuration (`authored`) see it as its template had
it. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.knative.autoscaling import PREFIX, effective, go_int

MIN_SCALE = PREFIX + "min-scale"
HELD_FROM = "knrollout.dev/min-scale-before"


def _int(value: object) -> int | None:
    return go_int(value) if isinstance(value, str) else None


def authored(annotations: Mapping[str, Any]) -> Mapping[str, Any]:
    """The annotations as the Revision's template had them: a hold undone on paper (the same mapping when
    there is no hold)."""
    if HELD_FROM not in annotations:
        return annotations
    out = dict(annotations)
    before = str(out.pop(HELD_FROM))
    if before:
        out[MIN_SCALE] = before
    else:
        out.pop(MIN_SCALE, None)
    return out


@dataclass(frozen=True)
class MinScale:
    """A Revision's min-scale as the controller sees it."""

    own: str | None  # its own canonical min-scale annotation, as authored (None: none)
    held: int | None  # the min-scale the controller holds it at (None: no hold)
    floor: int | None  # the min-scale Knative would apply without the hold (canonical, else legacy)
    ceiling: int | None  # its max-scale (None: unlimited)

    def patch(self, want: int | None) -> dict[str, Any] | None:
        """The merge patch that makes the hold `want` (None: no hold), or None when it already is."""
        if want == self.held:
            return None
        if want is None:
            return {"metadata": {"annotations": {MIN_SCALE: self.own, HELD_FROM: None}}}
        before = self.own or ""
        return {"metadata": {"annotations": {MIN_SCALE: str(want), HELD_FROM: before}}}


def read(annotations: Mapping[str, Any]) -> MinScale:
    held = _int(annotations.get(MIN_SCALE)) if HELD_FROM in annotations else None
    mine = authored(annotations)
    own = mine.get(MIN_SCALE)
    strings = {k: str(v) for k, v in mine.items()}
    floor = effective(strings, "min-scale")
    ceiling = effective(strings, "max-scale")
    top = _int(ceiling[1]) if ceiling is not None else None
    return MinScale(
        own=str(own) if own is not None else None,
        held=held,
        floor=_int(floor[1]) if floor is not None else None,
        ceiling=top if top else None,
    )
