"""`limit`/`continue` on lists. Stored objects are immutable, so a list's snapshot is just the list of
references: later pages come from the same snapshot (a consistent list, as etcd gives), until the snapshot
is evicted — then the token answers 410 Expired, as a compacted continue token does."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from rollout_lab.sandbox.store_api import ApiError, Obj

TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter."
)


@dataclass
class Page:
    items: list[Obj]
    resource_version: str
    continue_token: str | None
    remaining: int | None


def _encode(payload: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode(token: str) -> dict[str, object]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data") from None
    if not isinstance(payload, dict) or payload.get("v") != "meta.k8s.io/v1":
        raise ApiError(
            400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion"
        )
    return payload


class Snapshots:
    """The recent list snapshots that continue tokens point to (bounded in count and age)."""

    def __init__(self, capacity: int = 64, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.ttl = ttl
        self.clock = clock
        self._snaps: OrderedDict[int, tuple[float, str, list[Obj]]] = OrderedDict()
        self._ids = itertools.count(1)

    def first(self, items: list[Obj], rv: str, limit: int | None) -> Page:
        if not limit or limit <= 0 or len(items) <= limit:
            return Page(items, rv, None, None)
        snap = next(self._ids)
        self._snaps[snap] = (self.clock(), rv, items)
        while len(self._snaps) > self.capacity:
            self._snaps.popitem(last=False)
        return self._page(snap, rv, items, 0, limit)

    def resume(self, token: str, limit: int | None) -> Page:
        payload = _decode(token)
        snap, offset = payload.get("snap"), payload.get("off")
        if not isinstance(snap, int) or not isinstance(offset, int):
            raise ApiError(400, "BadRequest", "continue key is not valid")
        found = self._snaps.get(snap)
        if found is None or self.clock() - found[0] > self.ttl:
            self._snaps.pop(snap, None)
            raise ApiError(410, "Expired", TOO_OLD)
        _, rv, items = found
        return self._page(snap, rv, items, offset, limit or len(items))

    def _page(self, snap: int, rv: str, items: list[Obj], offset: int, limit: int) -> Page:
        end = offset + limit
        chunk = items[offset:end]
        if end >= len(items):
            self._snaps.pop(snap, None)
            return Page(chunk, rv, None, None)
        last = chunk[-1]["metadata"] if chunk else {}
        token = _encode(
            {
                "v": "meta.k8s.io/v1",
                "rv": int(rv),
                "start": f"{last.get('namespace', '')}/{last.get('name', '')}\x00",
                "snap": snap,
                "off": end,
            }
        )
        return Page(chunk, rv, token, len(items) - end)
