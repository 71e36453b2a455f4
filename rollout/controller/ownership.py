"""What this replica reconciles: everything (no leader election), everything while it holds the one Lease,
or, with shards, the namespaces of the shards whose Leases it holds and whose caches it has filled.

A sharded replica caches only the namespaces of the shards it holds (rollout.kube.informer `keep`). Taking a
shard keeps its namespaces at once, so their events flow in, then lists what they hold (`adopt`); only then
does it reconcile them, all of them enqueued, so no reconcile of a taken shard reads a half-filled cache.
Losing a shard stops its work at once (the writes' fence already refuses), abandons its outside calls, whose
new holder repeats them, and drops its objects from the caches."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import structlog

from rollout.controller.caches import Caches
from rollout.controller.metrics import ControllerMetrics
from rollout.controller.views import ObjectKey
from rollout.kube.client import KubeError
from rollout.kube.shards import ShardElector

log = structlog.get_logger(__name__)

Abandon = Callable[[Callable[[str], bool]], None]  # stop the outside calls of the namespaces chosen


class Ownership:
    def __init__(
        self,
        leader: ShardElector | None,
        caches: Caches,
        enqueue: Callable[[ObjectKey], None],
        abandon: Abandon,
        metrics: ControllerMetrics,
    ) -> None:
        self.leader = leader
        self.caches = caches
        self._enqueue = enqueue
        self._abandon = abandon
        self._metrics = metrics
        self._kept: set[int] = set()  # shards held: their namespaces are cached
        self._ready: set[int] = set()  # shards held whose caches are filled: their namespaces are reconciled
        self._adoptions: dict[int, asyncio.Task[None]] = {}
        self.sharded = leader is not None and leader.shards > 1
        if leader is not None:
            leader.on_change(self.changed)
        if self.sharded:
            caches.keep_only(lambda namespace: self._shard(namespace) in self._kept)

    def _shard(self, namespace: str) -> int:
        assert self.leader is not None
        return self.leader.shard(namespace)

    def owns(self, namespace: str) -> bool:
        if self.leader is None:
            return True
        if not self.leader.owns(namespace):
            return False
        return not self.sharded or self._shard(namespace) in self._ready

    @property
    def ready(self) -> list[int]:
        return sorted(self._ready)

    def changed(self, shard: int, leading: bool) -> None:
        assert self.leader is not None
        self._metrics.leader.set(1 if self.leader.is_leader else 0)
        self._metrics.shard_held.labels(str(shard)).set(1 if leading else 0)

        def in_shard(namespace: str) -> bool:
            return self._shard(namespace) == shard

        if not leading:
            self._kept.discard(shard)
            self._ready.discard(shard)
            adoption = self._adoptions.pop(shard, None)
            if adoption is not None:
                adoption.cancel()
            self._abandon(in_shard)  # calls started here would race the new holder's, which repeats them
            if self.sharded:
                self.caches.forget(in_shard)
            return
        if not self.sharded:
            self._enqueue_all(in_shard)
            return
        self._kept.add(shard)
        if shard not in self._adoptions:
            self._adoptions[shard] = asyncio.create_task(self._adopt(shard, in_shard))

    async def _adopt(self, shard: int, in_shard: Callable[[str], bool]) -> None:
        failures = 0
        while True:
            try:
                await self.caches.adopt(in_shard)
                break
            except KubeError as exc:
                failures += 1
                delay = min(0.2 * 2**failures, 10.0) * (0.5 + random.random() / 2)
                log.warning("filling a shard's caches failed", shard=shard, error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
        self._adoptions.pop(shard, None)
        if shard in self._kept:
            self._ready.add(shard)
            log.info("shard taken", shard=shard, identity=self.leader.identity if self.leader else None)
            self._enqueue_all(in_shard)

    def _enqueue_all(self, chosen: Callable[[str], bool]) -> None:
        for key in self.caches.all_keys():
            if chosen(key.namespace):
                self._enqueue(key)

    async def close(self) -> None:
        tasks = list(self._adoptions.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
