"""The one write the controller makes to a Knative Revision: its pre-warm hold (rollout.knative.minscale),
two annotations and nothing else. Anything else in a patch is refused here, before it is sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout.knative.minscale import HELD_FROM, MIN_SCALE
from rollout.kube.client import KubeClient, Obj
from rollout.kube.resources import REVISIONS

WRITABLE = frozenset({MIN_SCALE, HELD_FROM})


def _only_the_hold(patch: Mapping[str, Any]) -> bool:
    metadata = patch.get("metadata")
    if set(patch) != {"metadata"} or not isinstance(metadata, Mapping) or set(metadata) != {"annotations"}:
        return False
    annotations = metadata["annotations"]
    return isinstance(annotations, Mapping) and set(annotations) <= WRITABLE


async def write_min_scale(client: KubeClient, namespace: str, name: str, patch: Mapping[str, Any]) -> Obj:
    """Merge-patch a Revision's min-scale hold. ValueError for a patch that would write anything else."""
    if not _only_the_hold(patch):
        raise ValueError(
            f"revision {namespace}/{name}: only {sorted(WRITABLE)} may be written, not {dict(patch)}"
        )
    return await client.merge_patch(REVISIONS, namespace, name, dict(patch))
