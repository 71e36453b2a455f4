"""Events sent off the reconcile's critical path (what client-go's event broadcaster does).

`record` only queues the Event and returns: a reconcile does not wait for its Events before its next write
(a step's traffic write no longer queues behind two Event creates). A few sender tasks write them through an
`EventRecorder` (which aggregates repeats). Each involved object's Events go through one sender, so they
reach the API server in the order they were recorded. Not started, it sends each Event as it is recorded.
The queue is bounded: when it is full, `record` waits (backpressure, nothing is dropped). Events stay best
effort: a failed write is logged, never raised; a replica that lost its lease drops what it still holds
(its writes are fenced). With `busy` (the controller: reconciles are waiting), a sender holds an Event while
`busy()` says so, for up to `max_defer` seconds after it was recorded: in a burst the reconciles' writes go
first and the Events follow, at most that much later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from rollout.kube.client import NotLeader
from rollout.kube.events import EventRecorder, InvolvedObject

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Pending:
    obj: InvolvedObject
    type_: str
    reason: str
    message: str
    recorded: float = field(default_factory=time.monotonic)


class EventQueue:
    def __init__(
        self,
        recorder: EventRecorder,
        *,
        senders: int = 4,
        capacity: int = 4096,
        busy: Callable[[], bool] | None = None,
        max_defer: float = 2.0,
        poll: float = 0.05,
    ) -> None:
        self.recorder = recorder
        self.busy = busy
        self.max_defer = max_defer
        self.poll = poll
        self._queues: list[asyncio.Queue[_Pending]] = [
            asyncio.Queue(maxsize=max(capacity // max(senders, 1), 1)) for _ in range(max(senders, 1))
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        """Events waiting to be sent."""
        return sum(q.qsize() for q in self._queues)

    def _queue_of(self, obj: InvolvedObject) -> asyncio.Queue[_Pending]:
        shard = zlib.crc32(f"{obj.namespace}/{obj.kind}/{obj.name}".encode())
        return self._queues[shard % len(self._queues)]

    async def record(self, obj: InvolvedObject, type_: str, reason: str, message: str) -> None:
        if not self._tasks:  # not started (a reconcile run outside the controller's loop): send it now
            await self.recorder.record(obj, type_, reason, message)
            return
        await self._queue_of(obj).put(_Pending(obj, type_, reason, message))

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._send(q)) for q in self._queues]

    async def _send(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            item = await queue.get()
            try:
                while self.busy is not None and self.busy():
                    left = item.recorded + self.max_defer - time.monotonic()
                    if left <= 0:
                        break
                    await asyncio.sleep(min(self.poll, left))
                await self.recorder.record(item.obj, item.type_, item.reason, item.message)
            except NotLeader:
                log.info("not the leader any more: event dropped", reason=item.reason, object=item.obj.name)
            except Exception:  # best effort: one bad Event never stops the sender
                log.exception("event not sent", reason=item.reason, object=item.obj.name)
            finally:
                queue.task_done()

    async def close(self, grace: float) -> None:
        """Send what is queued (for up to `grace` seconds), then stop the senders."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await asyncio.gather(*(q.join() for q in self._queues))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        left = len(self)
        if left:
            log.warning("events not sent at shutdown", events=left)
