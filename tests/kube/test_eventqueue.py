"""EventQueue: Events leave the reconcile at once, reach the API server in order per object, a full queue
waits (never drops), shutdown sends what is queued, a lost lease drops them."""

from __future__ import annotations

import asyncio
from typing import Any

from rollout.kube.client import NotLeader
from rollout.kube.eventqueue import EventQueue
from rollout.kube.events import EventRecorder, InvolvedObject


class SlowApi:
    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []
        self.gate = asyncio.Event()
        self.not_leader = False

    async def create(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        await self.gate.wait()
        if self.not_leader:
            raise NotLeader("lost the lease")
        self.created.append((body["involvedObject"]["name"], body["reason"]))
        return body


def obj(name: str) -> InvolvedObject:
    return InvolvedObject("knrollout.dev/v1alpha1", "Rollout", "default", name, f"uid-{name}")


def queue_for(api: SlowApi, **kwargs: Any) -> EventQueue:
    return EventQueue(EventRecorder(api), **kwargs)  # type: ignore[arg-type]


async def test_not_started_sends_at_once() -> None:
    api = SlowApi()
    api.gate.set()
    await queue_for(api).record(obj("a"), "Normal", "StepAdvanced", "10%")
    assert api.created == [("a", "StepAdvanced")]


async def test_record_returns_before_the_write_and_order_is_kept_per_object() -> None:
    api = SlowApi()
    q = queue_for(api, senders=3)
    q.start()
    for i in range(5):
        for name in ("a", "b", "c", "d"):
            await asyncio.wait_for(q.record(obj(name), "Normal", f"R{i}", f"{name} {i}"), 0.1)
    assert api.created == [] and len(q) > 0  # nothing waited for the API server
    api.gate.set()
    await q.close(grace=5)
    assert len(api.created) == 20 and len(q) == 0
    for name in ("a", "b", "c", "d"):
        assert [r for n, r in api.created if n == name] == [f"R{i}" for i in range(5)]


async def test_full_queue_waits_instead_of_dropping() -> None:
    api = SlowApi()
    q = queue_for(api, senders=1, capacity=2)
    q.start()
    await q.record(obj("a"), "Normal", "R0", "m0")
    await asyncio.sleep(0)  # the sender takes R0 and waits on the API server
    await q.record(obj("a"), "Normal", "R1", "m1")
    await q.record(obj("a"), "Normal", "R2", "m2")
    blocked = asyncio.create_task(q.record(obj("a"), "Normal", "R3", "m3"))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    api.gate.set()
    await asyncio.wait_for(blocked, 1)
    await q.close(grace=5)
    assert [r for _, r in api.created] == ["R0", "R1", "R2", "R3"]


async def test_lost_lease_drops_and_keeps_sending() -> None:
    api = SlowApi()
    api.not_leader = True
    q = queue_for(api, senders=1)
    q.start()
    await q.record(obj("a"), "Normal", "R0", "m0")
    api.gate.set()
    await q.close(grace=1)
    assert api.created == [] and len(q) == 0


async def test_events_wait_while_busy_but_never_longer_than_max_defer() -> None:
    api = SlowApi()
    api.gate.set()
    busy = [True]
    q = queue_for(api, senders=1, busy=lambda: busy[0], max_defer=0.3, poll=0.01)
    q.start()
    await q.record(obj("a"), "Normal", "R0", "m0")
    await asyncio.sleep(0.1)
    assert api.created == []  # reconciles are waiting: the Event holds back
    busy[0] = False
    await asyncio.sleep(0.05)
    assert api.created == [("a", "R0")]  # sent as soon as they are not
    busy[0] = True
    started = asyncio.get_running_loop().time()
    await q.record(obj("a"), "Normal", "R1", "m1")
    for _ in range(100):
        if len(api.created) == 2:
            break
        await asyncio.sleep(0.01)
    waited = asyncio.get_running_loop().time() - started
    assert 0.25 <= waited < 1.0  # busy all along: sent once it had waited max_defer
    await q.close(grace=5)
