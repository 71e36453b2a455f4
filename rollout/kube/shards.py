"""Shards: replicas that share the work. Each namespace belongs to one shard; each shard has its own Lease.

A namespace's shard is a stable hash of its name (`shard_of`: every replica, every restart and every version
agree), so a RolloutPolicy and the Services it targets are always judged by the same replica. Replica k of a
StatefulSet is the home of shard k mod N: it competes for that shard's Lease as a leader does. Every replica
also stands in for the other shards: it takes over a shard whose Lease expired (its replica died) or was
released, and gives it back when the home replica asks (rollout.kube.leader, HOME_WAITING) once its own
writes to that shard have landed. A stand-in does not create a shard's missing Lease before one full lease
duration has passed, so replicas that start one after another do not grab each other's shards.

Each shard fences its own writes: a write to namespace ns goes out only while this replica holds the Lease of
`shard_of(ns)` within its renew deadline. With one shard this is plain leader election on the one Lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import replace

from rollout.kube.client import KubeClient, NotLeader
from rollout.kube.leader import LeaderElector, LeaseSettings, Role

_ORDINAL = re.compile(r"-(\d+)$")


def shard_of(namespace: str, shards: int) -> int:
    """The shard that owns `namespace`: a stable hash (not Python's hash(), which varies per process)."""
    if shards <= 1:
        return 0
    digest = hashlib.blake2b(namespace.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def home_from_pod_name(pod_name: str, shards: int) -> int | None:
    """A StatefulSet pod's home shard: its ordinal (`name-3` -> 3) modulo the shards; None without one."""
    found = _ORDINAL.search(pod_name)
    return int(found.group(1)) % shards if found else None


def lease_name(base: str, shard: int, shards: int) -> str:
    return base if shards <= 1 else f"{base}-shard-{shard}"


class ShardElector:
    """One LeaderElector per shard; `owns(namespace)` and the write fence `check(namespace)` ask the right
    one. `home` None: this replica only stands in (it owns no shard of its own)."""

    def __init__(
        self,
        client: KubeClient,
        lease: LeaseSettings,
        shards: int = 1,
        home: int | None = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shards = max(shards, 1)
        self.home = home
        self._clock = clock
        self._of: dict[str, int] = {}
        self._callbacks: list[Callable[[int, bool], None]] = []
        self.electors = [self._elector(client, lease, shard) for shard in range(self.shards)]
        self.identity = self.electors[0].identity

    def _elector(self, client: KubeClient, lease: LeaseSettings, shard: int) -> LeaderElector:
        role: Role = "leader" if self.shards == 1 else ("home" if shard == self.home else "stand-in")
        settings = replace(lease, name=lease_name(lease.name, shard, self.shards))
        elector = LeaderElector(
            client,
            settings,
            role=role,
            clock=self._clock,
            drained=lambda: client.drained(lambda ns: ns is not None and self.shard(ns) == shard),
        )
        elector.on_change(lambda leading: self._changed(shard, leading))
        return elector

    def shard(self, namespace: str) -> int:
        found = self._of.get(namespace)
        if found is None:
            found = self._of[namespace] = shard_of(namespace, self.shards)
        return found

    def owns(self, namespace: str) -> bool:
        return self.electors[self.shard(namespace)].is_leader

    @property
    def held(self) -> list[int]:
        return [shard for shard, e in enumerate(self.electors) if e.is_leader]

    @property
    def is_leader(self) -> bool:
        """Holds at least one shard."""
        return any(e.is_leader for e in self.electors)

    def check(self, namespace: str | None = None) -> None:
        """The write fence. A write outside any namespace needs some shard (there are none today)."""
        if namespace is None:
            if not self.is_leader:
                raise NotLeader(f"{self.identity} holds no shard")
            return
        self.electors[self.shard(namespace)].check()

    def on_change(self, callback: Callable[[int, bool], None]) -> None:
        """`callback(shard, leading)` when this replica takes or loses a shard."""
        self._callbacks.append(callback)

    def _changed(self, shard: int, leading: bool) -> None:
        for callback in list(self._callbacks):
            callback(shard, leading)

    async def run(self) -> None:
        await asyncio.gather(*(e.run() for e in self.electors))

    async def release(self) -> None:
        await asyncio.gather(*(e.release() for e in self.electors))
