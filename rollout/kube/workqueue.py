"""A keyed work queue for reconcilers (the client-go work queue, in asyncio).

- De-duplication: a key waiting in the queue is there once, however often it is added.
- Per-key serialisation: a key is handed to one worker at a time; added again while it is being processed,
  it is marked dirty and queued again when that worker calls `done`.
- Delayed requeue: `add_after(key, seconds)` keeps the earliest wanted time per key.
- Rate-limited retries: `add_rate_limited(key)` waits base * 2**failures (capped) before the key comes back;
  `forget(key)` resets its failure count after a success.
- Due work first: a key whose time has come (a delayed key falling due, `add_due`) is handed out ahead of the
  changes (`add`) queued in the `slack` seconds before it; older changes keep their turn. Keys are taken by
  deadline: a change's is when it was added plus `slack`, due work's is its due time. Under a burst, a rollout
  step whose bake has ended does not wait behind a backlog of status notifications that can wait a moment,
  and no change waits longer than `slack` behind due work that arrived after it.
- One waiter woken per key: an idle worker waits on its own future, and a key made ready wakes one of them
  (who, taking it, wakes the next if more are ready). One timer, not one per worker, brings delayed keys in.
  Waking every idle worker for each key (an `asyncio.Event`, as before) made each of the 48 controller
  workers look for work, and arm a timeout, for every key: bench/workqueue.py measures the difference.
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
        slack: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_delay
        self._max = max_delay
        self._slack = slack
        self._clock = clock
        self._ready: list[tuple[float, int, K]] = []  # heap of (deadline, seq, key) ready to be taken
        self._queued: dict[K, float] = {}  # key -> the deadline of its live entry in _ready
        self._processing: set[K] = set()
        self._dirty: dict[K, float] = {}  # added while processing -> the deadline it comes back with
        self._delayed: list[tuple[float, int, K]] = []  # heap of (due, seq, key)
        self._due: dict[K, float] = {}  # key -> earliest due time among its delayed entries
        self._seq = 0
        self._failures: dict[K, int] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()  # idle workers' wake-up calls, oldest first
        self._timer: asyncio.TimerHandle | None = None  # wakes a waiter when the next delayed key falls due
        self._timer_due: float | None = None
        self._closed = False

    # --- adding ----------------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """A change to look at: taken after due work that falls due within `slack` seconds."""
        self._add(key, self._clock() + self._slack)

    def add_due(self, key: K) -> None:
        """Work whose time has come: ahead of the changes added in the last `slack` seconds."""
        self._add(key, self._clock())

    def _add(self, key: K, deadline: float) -> None:
        if self._push(key, deadline):
            self._wake_one()

    def _push(self, key: K, deadline: float) -> bool:
        """Queue `key` as ready with `deadline`; whether it became (or moved up as) ready work."""
        if self._closed:
            return False
        self._due.pop(key, None)
        if key in self._processing:
            self._dirty[key] = min(deadline, self._dirty.get(key, deadline))
            return False
        current = self._queued.get(key)
        if current is not None and current <= deadline:
            return False
        self._queued[key] = deadline  # an earlier deadline: the entry already in the heap goes stale
        self._seq += 1
        heapq.heappush(self._ready, (deadline, self._seq, key))
        return True

    def add_after(self, key: K, delay: float) -> None:
        if self._closed:
            return
        if delay <= 0:
            self.add_due(key)
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
        if self._waiters:
            self._arm_timer()

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
        """Move delayed keys whose time has come into the ready heap; the seconds until the next one, if any."""
        now = self._clock()
        while self._delayed:
            due, _, key = self._delayed[0]
            if self._due.get(key) != due:  # superseded by an earlier wish or by add()
                heapq.heappop(self._delayed)
                continue
            if due > now:
                return due - now
            heapq.heappop(self._delayed)
            self._push(key, due)  # (drops the _due entry)
        return None

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _arm_timer(self) -> None:
        """Have the timer fire when the earliest delayed key falls due (keys already due are promoted)."""
        wait = self._promote_due()
        if self._queued:
            self._wake_one()
        if wait is None:
            self._cancel_timer()
            return
        due = self._clock() + wait
        if self._timer is not None and self._timer_due is not None and self._timer_due <= due:
            return
        self._cancel_timer()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(wait, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_due = None, None

    def _on_timer(self) -> None:
        self._timer, self._timer_due = None, None
        if self._waiters and not self._closed:
            self._arm_timer()

    def _take(self) -> K | None:
        while self._ready:
            deadline, _, key = heapq.heappop(self._ready)
            if self._queued.get(key) == deadline:
                del self._queued[key]
                return key
        return None

    async def get(self) -> K:
        """The next key to process; the caller must call `done(key)` afterwards."""
        while True:
            if self._closed:
                raise QueueShutDown
            self._promote_due()
            key = self._take()
            if key is not None:
                self._processing.add(key)
                if self._queued:
                    self._wake_one()  # more ready: pass the turn on to another idle worker
                return key
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            if self._delayed:
                self._arm_timer()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the wake-up goes to another worker
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise

    def done(self, key: K) -> None:
        self._processing.discard(key)
        deadline = self._dirty.pop(key, None)
        if deadline is not None:
            self._add(key, deadline)

    def shutdown(self) -> None:
        self._closed = True
        self._cancel_timer()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # --- introspection ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Keys ready to be taken now."""
        return len(self._queued)

    @property
    def delayed(self) -> int:
        return len(self._due)

    @property
    def waiting(self) -> int:
        """Workers idle in `get`."""
        return sum(1 for w in self._waiters if not w.done())

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
