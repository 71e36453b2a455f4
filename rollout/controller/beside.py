"""Outside calls run beside the reconcile workers (webhooks, notifications): a reconcile starts them and
returns; each finished call keeps its answer until a reconcile takes it, and re-queues its target. At most
`per_namespace` calls of one namespace run at once, so a team's hanging destinations delay only that team,
and at most `limit` wait or run in all (a bounded queue: past it, `start` refuses)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

R = TypeVar("R")
CallId = tuple[str, ...]  # the namespace first


class BesideCalls(Generic[R]):
    def __init__(
        self,
        notify: Callable[[Any], None],
        per_namespace: int,
        crashed: Callable[[str], R],
        limit: int | None = None,
    ) -> None:
        self.notify = notify
        self.per_namespace = per_namespace
        self.limit = limit
        self._crashed = crashed
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._running: dict[CallId, asyncio.Task[None]] = {}
        self._done: dict[CallId, R] = {}

    def running(self, cid: CallId) -> bool:
        return cid in self._running

    def known(self, cid: CallId) -> bool:
        return cid in self._running or cid in self._done

    def running_under(self, prefix: CallId) -> Iterator[CallId]:
        return (c for c in self._running if c[: len(prefix)] == prefix)

    def done_under(self, prefix: CallId) -> list[CallId]:
        return [c for c in self._done if c[: len(prefix)] == prefix]

    def answer(self, cid: CallId) -> R | None:
        return self._done.get(cid)

    def take(self, cid: CallId) -> R | None:
        return self._done.pop(cid, None)

    def start(self, target: Any, cid: CallId, call: Callable[[], Awaitable[R]]) -> bool:
        """Start `call` unless it runs or waits to be taken; False when the queue is full."""
        if self.known(cid):
            return True
        if self.limit is not None and len(self._running) + len(self._done) >= self.limit:
            return False
        slots = self._slots.setdefault(cid[0], asyncio.Semaphore(self.per_namespace))

        async def run() -> None:
            try:
                async with slots:
                    result = await call()
            except Exception as exc:  # callers return values; this only guards the runner's own state
                log.exception("outside call crashed", call="/".join(cid))
                result = self._crashed(f"{type(exc).__name__}: {exc}")
            finally:
                self._running.pop(cid, None)
            self._done[cid] = result
            self.notify(target)

        self._running[cid] = asyncio.create_task(run(), name="/".join(cid))
        return True

    def settle(self, target: Any, cid: CallId, answer: R) -> None:
        """Record `answer` for a call that will not run (its queue was full), as if it had answered: the
        next reconcile takes it like any other, and `start` does not run it while it waits to be taken."""
        self._done[cid] = answer
        self.notify(target)

    def abandon(self, where: Callable[[str], bool] = lambda namespace: True) -> None:
        """Stop the calls of the namespaces `where` chooses and forget their answers (this replica no longer
        owns them: the new owner calls again what the cluster's status still lists)."""
        for cid in [c for c in self._running if where(c[0])]:
            self._running.pop(cid).cancel()
        for cid in [c for c in self._done if where(c[0])]:
            del self._done[cid]

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
