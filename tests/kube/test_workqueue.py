import asyncio

import pytest

from rollout.kube.workqueue import QueueShutDown, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_deduplicates_waiting_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    got = [await q.get() for _ in range(3)]
    assert got == ["a", "b", "c"]


async def test_key_added_while_processing_comes_back_once_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_two_workers_never_hold_the_same_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    holding: set[str] = set()
    overlaps = 0
    processed = 0

    async def worker() -> None:
        nonlocal overlaps, processed
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in holding:
                overlaps += 1
            holding.add(key)
            await asyncio.sleep(0.001)
            holding.discard(key)
            processed += 1
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for i in range(200):
        q.add(f"k{i % 3}")
        if i % 10 == 0:
            await asyncio.sleep(0.0005)
    for _ in range(1000):
        if not (len(q) or q.processing):
            break
        await asyncio.sleep(0.005)
    q.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == 0
    assert 3 <= processed < 200  # de-duplicated, yet every key processed after its last add


async def test_add_after_keeps_the_earliest_time() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 3)
    q.add_after("a", 7)
    assert q.next_due("a") == 3
    clock.t += 2.9
    assert len(q) == 0 and q._promote_due() == pytest.approx(0.1)
    clock.t += 0.2
    assert q._promote_due() is None
    assert len(q) == 1 and q.delayed == 0


async def test_add_cancels_a_pending_delay() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 5)
    q.add("a")
    assert await q.get() == "a"
    q.done("a")
    clock.t += 10
    q._promote_due()
    assert len(q) == 0  # the delayed entry was superseded by the immediate add


async def test_get_wakes_up_for_a_delayed_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    key = await asyncio.wait_for(q.get(), timeout=2)
    assert key == "a"
    assert loop.time() - start >= 0.04


async def test_rate_limited_retries_back_off_exponentially_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.05)
    delays = [q.add_rate_limited("a") for _ in range(5)]
    assert delays == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert q.failures("a") == 5
    q.forget("a")
    assert q.backoff("a") == 0.01


async def test_shutdown_releases_waiting_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(waiter, timeout=1)


async def test_due_work_goes_ahead_of_recent_changes_but_not_of_old_ones() -> None:
    """A delayed key falling due (a bake ending) is taken before the changes queued in the last `slack`
    seconds; a change that has waited longer than that keeps its turn, so none waits for ever."""
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock, slack=1.0)
    q.add("old-change")
    clock.t += 1.5
    q.add("change-1")
    q.add("change-2")
    q.add_after("timer", 0.2)
    q.add_due("measured")  # e.g. an analysis window measured for it
    clock.t += 0.3
    order = [await q.get() for _ in range(5)]
    assert order == ["old-change", "measured", "timer", "change-1", "change-2"]


async def test_a_queued_change_that_falls_due_moves_up_and_keeps_one_place() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock, slack=1.0)
    q.add("a")
    q.add("b")
    q.add_due("b")
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["b", "a"]
    q.done("a")
    q.done("b")
    assert len(q) == 0
    clock.t += 5
    assert q._take() is None  # b's first entry was superseded, not left to run twice


async def test_due_work_for_a_key_in_process_comes_back_as_due_work() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock, slack=1.0)
    q.add("a")
    assert await q.get() == "a"
    q.add_due("a")  # while a worker holds it
    q.add("b")
    q.add("a")  # a later change does not push it back
    q.done("a")
    assert [await q.get(), await q.get()] == ["a", "b"]


async def _idle_workers(q: WorkQueue[str], n: int) -> list[asyncio.Task[str]]:
    tasks = [asyncio.create_task(q.get()) for _ in range(n)]
    await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)
    return tasks


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_key_wakes_one_idle_worker_not_all() -> None:
    q: WorkQueue[str] = WorkQueue()
    tasks = await _idle_workers(q, 10)
    looks = 0
    take = q._take

    def counted_take() -> str | None:
        nonlocal looks
        looks += 1
        return take()

    q._take = counted_take  # type: ignore[method-assign]
    q.add("a")
    await _settle()
    assert [t.result() for t in tasks if t.done()] == ["a"]
    assert q.waiting == 9
    assert looks == 1  # only the worker that took it looked: none of the other nine was woken for nothing
    q.add("b")
    q.add("c")
    await _settle()
    assert sorted(t.result() for t in tasks if t.done()) == ["a", "b", "c"]
    q.shutdown()
    released = await asyncio.gather(*(t for t in tasks if not t.done()), return_exceptions=True)
    assert len(released) == 7 and all(isinstance(r, QueueShutDown) for r in released)


async def test_a_delayed_key_falling_due_wakes_one_of_many_idle_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    tasks = await _idle_workers(q, 5)
    q.add_after("a", 0.03)
    q.add_after("b", 0.06)
    done, _ = await asyncio.wait(tasks, timeout=2, return_when=asyncio.FIRST_COMPLETED)
    assert [t.result() for t in done] == ["a"]
    await asyncio.sleep(0.1)
    assert sorted(t.result() for t in tasks if t.done()) == ["a", "b"]
    q.shutdown()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_worker_cancelled_after_its_wake_up_passes_the_key_on() -> None:
    q: WorkQueue[str] = WorkQueue()
    first, second = await _idle_workers(q, 2)
    q.add("a")  # wakes the first waiter...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, timeout=1) == "a"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert q.waiting == 0


async def test_a_cancelled_idle_worker_leaves_no_waiter_behind() -> None:
    q: WorkQueue[str] = WorkQueue()
    (only,) = await _idle_workers(q, 1)
    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    assert q.waiting == 0
    q.add("a")
    assert await asyncio.wait_for(q.get(), timeout=1) == "a"
