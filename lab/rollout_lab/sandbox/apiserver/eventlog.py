"""The bounded event log of one resource and the watchers reading it.

Like the API server's watch cache: each resource keeps its last N events; a watch may start at any
resourceVersion the log still covers (older ones answer 410 Expired), and live events fan out to watchers,
indexed by object name so that a watch with `fieldSelector=metadata.name=x` costs nothing for other objects.
Stored objects are never mutated after they are written, so events share them (and their JSON encoding).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Literal

from rollout_lab.sandbox.apiserver import jsoncodec
from rollout_lab.sandbox.store_api import ApiError, Obj

StoredType = Literal["ADDED", "MODIFIED", "DELETED"]
Predicate = Callable[[Obj], bool]
RECENT = 256  # log entries kept as objects; older ones keep only their JSON


class LogEntry:
    """One committed write. `obj` is the stored object (for DELETED: its last state, at the deletion's
    resourceVersion); `old` the previous state (None for ADDED).

    Once an entry is no longer recent, the log `compact()`s it: it keeps only the JSON encodings and
    decodes them on demand. Old versions then cost bytes instead of thousands of small dicts, which
    keeps memory and the garbage collector's full passes small under write load."""

    __slots__ = ("_json", "_obj", "_old", "_old_json", "name", "namespace", "rv", "type")

    def __init__(self, rv: int, type_: StoredType, obj: Obj, old: Obj | None) -> None:
        meta = obj["metadata"]
        self.rv = rv
        self.type: StoredType = type_
        self._obj: Obj | None = obj
        self._old: Obj | None = old
        self.namespace: str = meta.get("namespace", "")
        self.name: str = meta["name"]
        self._json: bytes | None = None
        self._old_json: bytes | None = None

    @property
    def obj(self) -> Obj:
        if self._obj is not None:
            return self._obj
        decoded: Obj = jsoncodec.loads(self.object_json())
        return decoded

    @property
    def old(self) -> Obj | None:
        if self._old is not None:
            return self._old
        if self._old_json is None:
            return None
        decoded: Obj = jsoncodec.loads(self._old_json)
        return decoded

    def object_json(self) -> bytes:
        """The object's JSON encoding, computed once and shared by every watcher."""
        if self._json is None:
            self._json = _encode(self._obj)
        return self._json

    def compact(self) -> None:
        if self._obj is None:
            return
        self.object_json()
        if self._old is not None:
            self._old_json = _encode(self._old)
        self._obj = self._old = None


def _encode(obj: Obj | None) -> bytes:
    return jsoncodec.dumps(obj)


class Watcher:
    """One open watch: a queue of (event type, entry) for the events its filter lets through."""

    def __init__(
        self,
        log: ResourceLog,
        namespace: str | None,
        name: str | None,
        predicate: Predicate | None,
        max_queue: int,
    ) -> None:
        self._log = log
        self.namespace = namespace or None
        self.name = name
        self._predicate = predicate
        self._max_queue = max_queue
        self._queue: deque[tuple[str, LogEntry]] = deque()
        self._wakeup = asyncio.Event()
        self.closed = False
        self.close_reason = ""

    def matches_scope(self, entry: LogEntry) -> bool:
        if self.namespace is not None and entry.namespace != self.namespace:
            return False
        return self.name is None or entry.name == self.name

    def offer(self, entry: LogEntry) -> None:
        """Queue `entry` if it passes the filter, turned into what a filtered watcher sees: an object that
        starts to match is ADDED, one that stops matching is DELETED."""
        if self.closed or not self.matches_scope(entry):
            return
        kind = self._transform(entry)
        if kind is None:
            return
        if len(self._queue) >= self._max_queue:
            self.close("watcher fell too far behind")
            return
        self._queue.append((kind, entry))
        self._wakeup.set()

    def _transform(self, entry: LogEntry) -> str | None:
        pred = self._predicate
        if pred is None:
            return entry.type
        now = pred(entry.obj)
        if entry.type != "MODIFIED":
            return entry.type if now else None
        before = entry.old is not None and pred(entry.old)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        return "DELETED" if before else None

    def preload(self, events: list[tuple[str, LogEntry]]) -> None:
        self._queue.extend(events)
        if events:
            self._wakeup.set()

    async def next(self, wait: float | None = None) -> tuple[str, LogEntry] | None:
        """The next event; None when the watcher closed or `wait` seconds passed with nothing to deliver."""
        while not self._queue:
            if self.closed:
                return None
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), wait)
            except TimeoutError:
                return None
        return self._queue.popleft()

    def drain(self) -> list[tuple[str, LogEntry]]:
        """Everything queued now, without waiting (lets a stream write several events at once)."""
        out = list(self._queue)
        self._queue.clear()
        return out

    def pending(self) -> int:
        return len(self._queue)

    def close(self, reason: str = "closed") -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self._log.detach(self)
            self._wakeup.set()


class ResourceLog:
    """The last `capacity` events of one resource and its open watchers."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: deque[LogEntry] = deque()
        # The resourceVersion of the newest event dropped from the log: a watch from an older version
        # could miss it, so it answers 410 Expired.
        self.evicted_upto = 0
        self._all: set[Watcher] = set()
        self._by_name: dict[str, set[Watcher]] = {}

    def append(self, entry: LogEntry) -> None:
        self._entries.append(entry)
        while len(self._entries) > self.capacity:
            self.evicted_upto = self._entries.popleft().rv
        if len(self._entries) > RECENT:
            self._entries[-RECENT - 1].compact()
        for w in list(self._all):
            w.offer(entry)
        named = self._by_name.get(entry.name)
        if named:
            for w in list(named):
                w.offer(entry)

    def check_not_expired(self, rv: int) -> None:
        if rv < self.evicted_upto:
            raise ApiError(
                410,
                "Expired",
                f"too old resource version: {rv} ({self.evicted_upto + 1})",
            )

    def since(self, rv: int) -> list[LogEntry]:
        """The logged events newer than `rv`, oldest first (the caller checked expiry)."""
        out: list[LogEntry] = []
        for entry in reversed(self._entries):
            if entry.rv <= rv:
                break
            out.append(entry)
        out.reverse()
        return out

    def attach(self, watcher: Watcher) -> None:
        if watcher.name is not None:
            self._by_name.setdefault(watcher.name, set()).add(watcher)
        else:
            self._all.add(watcher)

    def detach(self, watcher: Watcher) -> None:
        self._all.discard(watcher)
        if watcher.name is not None:
            named = self._by_name.get(watcher.name)
            if named is not None:
                named.discard(watcher)
                if not named:
                    del self._by_name[watcher.name]

    def watchers(self) -> list[Watcher]:
        out = list(self._all)
        for named in self._by_name.values():
            out.extend(named)
        return out

    def expire(self, upto: int) -> None:
        """Forget every event up to `upto` (fault injection and tests: make old versions expire)."""
        while self._entries and self._entries[0].rv <= upto:
            self._entries.popleft()
        self.evicted_upto = max(self.evicted_upto, upto)
