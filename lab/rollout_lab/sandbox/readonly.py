"""Listing without copies, where the store allows it.

`MemoryStore.list_stored` hands out the stored objects themselves (read-only); any other `ObjectStore` is
listed with `list` (copies). The Knative simulator and the traffic generator read whole kinds many times a
second and never mutate what they read, so they use this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollout_lab.sandbox.store_api import Obj, ObjectStore, ResourceType


def list_readonly(store: ObjectStore, rt: ResourceType) -> Sequence[Obj]:
    """All objects of `rt` in every namespace. The caller must not mutate them."""
    fast: Any = getattr(store, "list_stored", None)
    if fast is not None:
        return list(fast(rt, None, None))
    items, _ = store.list(rt)
    return items
