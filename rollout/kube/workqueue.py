"""A keyed work queue for reconcilers (the client-go work queue, in asyncio).

- De-duplication: a key waiting in the queue is there once, however often it is added.
- Per-key serialisation: a key is handed to one worker at a time; added again while it is being processed,
  it is marked dirty and queued again when that worker calls `done`.
- Delayed requeue: `add_after(key, seconds)` keeps the earliest wanted time per key.
- Rate-limited retries: `add_rate_limited(key)` waits base * 2**failures (capped) before the key comes back;
  `forget(key)` resets its failure count after a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """The queue was shut down: workers should return."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        base_delay: float = 0.005,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_delay
        self._max = max_delay
        self._clock = clock
        self._queue: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []  # heap of (due, seq, key)
        self._due: dict[K, float] = {}  # key -> earliest due time among its delayed entries
        self._seq = 0
        self._failures: dict[K, int] = {}
        self._wakeup = asyncio.Event()
        self._closed = False

    # --- adding ----------------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self._closed:
            return
        self._due.pop(key, None)
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.append(key)
        self._wakeup.set()

    def add_after(self, key: K, delay: float) -> None:
        if self._closed:
            return
        if delay <= 0:
            self.add(key)
            return
        if key in self._queued:
            return
        due = self._clock() + delay
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._delayed, (due, self._seq, key))
        self._wakeup.set()

    def backoff(self, key: K) -> float:
        """The delay the next `add_rate_limited(key)` will use."""
        failures = self._failures.get(key, 0)
        return float(min(self._base * 2.0 ** min(failures, 40), self._max))

    def add_rate_limited(self, key: K) -> float:
        delay = self.backoff(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    # --- taking ----------------------------------------------------------------------------------------

    def _promote_due(self) -> float | None:
        """Move delayed keys whose time has come into the queue; the seconds until the next one, if any."""
        now = self._clock()
        while self._delayed:
            due, _, key = self._delayed[0]
            if self._due.get(key) != due:  # superseded by an earlier wish or by add()
                heapq.heappop(self._delayed)
                continue
            if due > now:
                return due - now
            heapq.heappop(self._delayed)
            del self._due[key]
            self.add(key)
        return None

    async def get(self) -> K:
        """The next key to process; the caller must call `done(key)` afterwards."""
        while True:
            if self._closed:
                raise QueueShutDown
            wait = self._promote_due()
            if self._queue:
                key = self._queue.popleft()
                self._queued.discard(key)
                self._processing.add(key)
                return key
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: it can swallow a cancellation on 3.11
                    await self._wakeup.wait()

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def shutdown(self) -> None:
        self._closed = True
        self._wakeup.set()

    # --- introspection ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Keys ready to be taken now."""
        return len(self._queue)

    @property
    def delayed(self) -> int:
        return len(self._due)

    @property
    def processing(self) -> int:
        return len(self._processing)

    def in_process(self, key: K) -> bool:
        """`key` was handed out by `get` and is not `done` yet."""
        return key in self._processing

    def next_due(self, key: K) -> float | None:
        """Seconds until a delayed `key` comes back, if it is waiting."""
        due = self._due.get(key)
        return None if due is None else max(due - self._clock(), 0.0)
