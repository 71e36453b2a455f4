"""Time for the sandbox: the wall clock, or a virtual clock that a simulation advances by hand.

Everything in the sandbox that depends on time (revision readiness delays, autoscaling windows, traffic
arrivals) reads `clock.now()` and waits with `await clock.sleep(seconds)`, so the same code runs in real time
(`rollout sandbox`) and as fast as the CPU allows (simulations, tests).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that moves only when `advance` (or `advance_to`) is called.

    Sleepers wake in time order as the clock passes their deadline; `advance` yields to the event loop after
    each wake-up so that the woken tasks run at (virtually) the right moment.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    @property
    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes (None when nobody sleeps)."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        await self.advance_to(self._now + seconds)

    async def advance_to(self, target: float) -> None:
        """Move time forward to `target`, waking every sleeper whose deadline passes, in order."""
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._now = max(self._now, deadline)
            future.set_result(None)
            await _settle()
        self._now = max(self._now, target)
        await _settle()


async def _settle(max_rounds: int = 1000) -> None:
    """Let every runnable task run until the event loop has nothing ready (woken tasks may schedule
    follow-up work, such as their next sleep). Falls back to a fixed number of rounds on event loops that
    do not expose their ready queue."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    for round_ in range(max_rounds):
        await asyncio.sleep(0)
        if ready is None:
            if round_ >= 20:
                return
        elif not ready:
            return
