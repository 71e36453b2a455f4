"""JSON merge patches (RFC 7386), pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest merge patch turning `old` into `new`: changed keys with their new value, removed keys as
    null, nested objects diffed recursively, lists replaced whole. Empty when they are equal."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if before is _MISSING:
            patch[key] = value
        elif isinstance(before, Mapping) and isinstance(value, Mapping):
            inner = merge_patch_diff(before, value)
            if inner:
                patch[key] = inner
        elif before != value or type(before) is not type(value):
            patch[key] = value
    return patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 application (used by tests and to predict what a patch leaves)."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


class _Missing:
    pass


_MISSING: Any = _Missing()
