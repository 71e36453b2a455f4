"""Knative-style status conditions (knative.dev/pkg/apis ConditionSet), as pure functions on lists of dicts.

A "living" condition set has a happy condition `Ready` that summarises its dependents: False when any
dependent is False (with that dependent's reason and message), else Unknown when any is Unknown, else True.
Conditions are kept sorted by type; `lastTransitionTime` changes only when status, reason or message change.
Conditions outside the set (a Revision's `Active`) carry severity Info and do not affect Ready.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rollout_lab.sandbox.apiserver import objects

Condition = dict[str, Any]


def rfc3339(seconds: float) -> str:
    return _rfc3339(int(seconds))


# called for every condition of every status computed, mostly for this very second
_rfc3339 = functools.lru_cache(maxsize=64)(objects.rfc3339)


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None


def status_of(obj: Mapping[str, Any] | None, type_: str = "Ready") -> str:
    """ "True", "False" or "Unknown" (also when the object or the condition is absent)."""
    status = (obj or {}).get("status") or {}
    condition = find(status.get("conditions"), type_)
    return str(condition.get("status", "Unknown")) if condition else "Unknown"


def make(type_: str, status: str, reason: str = "", message: str = "", severity: str = "") -> Condition:
    condition: Condition = {"type": type_, "status": status}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    if severity:
        condition["severity"] = severity
    return condition


def merge(
    previous: Sequence[Mapping[str, Any]] | None,
    wanted: Iterable[Condition],
    now: float,
) -> list[Condition]:
    """The new condition list: `wanted` (without times), with lastTransitionTime carried over from
    `previous` where nothing but the time would change."""
    old = {c.get("type"): c for c in previous or ()}
    result = []
    for condition in wanted:
        before = old.get(condition["type"])
        same = before is not None and all(
            before.get(key, "") == condition.get(key, "")
            for key in ("status", "reason", "message", "severity")
        )
        stamped = dict(condition)
        stamped["lastTransitionTime"] = (
            str(before.get("lastTransitionTime", rfc3339(now))) if same and before else rfc3339(now)
        )
        result.append(stamped)
    return sorted(result, key=lambda c: str(c["type"]))


def living(dependents: Sequence[Condition], extra: Sequence[Condition] = ()) -> list[Condition]:
    """`dependents` plus the Ready condition they imply, plus `extra` (severity Info) conditions."""
    ready = make("Ready", "True")
    for condition in dependents:
        if condition["status"] == "False":
            ready = make("Ready", "False", condition.get("reason", ""), condition.get("message", ""))
            break
    else:
        for condition in dependents:
            if condition["status"] == "Unknown":
                ready = make("Ready", "Unknown", condition.get("reason", ""), condition.get("message", ""))
                break
    return [*dependents, ready, *(dict(c, severity="Info") for c in extra)]
