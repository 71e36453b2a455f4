"""Status writes through the /status subresource: one merge patch carrying exactly what changed (removed keys
as null) and the resourceVersion the new status was computed from (409 if the object moved meanwhile)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout.kube.client import KubeClient, Obj
from rollout.kube.patch import merge_patch_diff
from rollout.kube.resources import Resource


def status_patch(obj: Mapping[str, Any], new_status: Mapping[str, Any]) -> Obj | None:
    """The /status patch turning obj's status into `new_status`; None when nothing changes."""
    old = obj.get("status") or {}
    diff = merge_patch_diff(old if isinstance(old, Mapping) else {}, new_status)
    if not diff:
        return None
    meta = obj.get("metadata") or {}
    return {"metadata": {"resourceVersion": str(meta.get("resourceVersion") or "")}, "status": diff}


async def write_status(
    client: KubeClient, resource: Resource, obj: Mapping[str, Any], new_status: Mapping[str, Any]
) -> Obj | None:
    """Write `new_status` onto `obj` (as read); the updated object, or None when there was nothing to write."""
    patch = status_patch(obj, new_status)
    if patch is None:
        return None
    meta = obj.get("metadata") or {}
    return await client.merge_patch(
        resource, str(meta.get("namespace") or ""), str(meta.get("name") or ""), patch, subresource="status"
    )
