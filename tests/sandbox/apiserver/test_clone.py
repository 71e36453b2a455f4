"""clone: a deep, exact copy of JSON values (fast path) and of what JSON cannot carry exactly (fallback)."""

from __future__ import annotations

import enum
from typing import Any

from rollout_lab.sandbox.apiserver.objects import clone, copy_obj


class Phase(enum.StrEnum):
    READY = "Ready"


def test_deep_and_independent() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "a", "labels": {"x": "1"}, "generation": 3},
        "spec": {"traffic": [{"percent": 10, "latestRevision": False}, {"percent": 90.5, "tag": None}]},
        "unicode": "ünï ✓",
    }
    copied = copy_obj(obj)
    assert copied == obj and copied is not obj
    copied["spec"]["traffic"][0]["percent"] = 20
    copied["metadata"]["labels"]["y"] = "2"
    assert obj["spec"]["traffic"][0]["percent"] == 10 and "y" not in obj["metadata"]["labels"]
    assert (
        type(copied["spec"]["traffic"][1]["percent"]) is float
        and type(copied["metadata"]["generation"]) is int
    )


def test_what_json_cannot_carry_is_copied_exactly() -> None:
    obj: dict[str, Any] = {"big": 2**70, "phase": Phase.READY, "nested": [{"n": -(2**65)}]}
    copied = clone(obj)
    assert copied == obj and copied["big"] == 2**70 and copied["phase"] is Phase.READY
    assert copied["nested"] is not obj["nested"]
    assert clone({1: "non-string key"}) == {1: "non-string key"}
    assert clone("scalar") == "scalar" and clone(None) is None
