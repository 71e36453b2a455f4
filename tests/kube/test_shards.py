"""Shards: which namespace belongs to which shard, and the hand-over of a shard's Lease between its home
replica and stand-ins, against in-memory Leases with API-server semantics."""

from __future__ import annotations

import collections
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from rollout.kube.client import KubeError, NotLeader
from rollout.kube.leader import HOME_WAITING, LeaderElector, LeaseSettings, Role
from rollout.kube.shards import ShardElector, home_from_pod_name, lease_name, shard_of


class Leases:
    """get / create_unfenced / replace of Leases by name, 409 on a stale resourceVersion."""

    def __init__(self) -> None:
        self.objs: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.writing: dict[str | None, int] = {}

    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objs.get(name))

    async def create_unfenced(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name in self.objs:
            raise KubeError(409, "AlreadyExists", "exists")
        return self._store(name, body)

    async def replace(
        self, resource: Any, namespace: str, name: str, body: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        if body["metadata"]["resourceVersion"] != self.objs[name]["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "modified")
        return self._store(name, body)

    def _store(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objs[name] = obj
        return copy.deepcopy(obj)

    def holder(self, name: str) -> str | None:
        obj = self.objs.get(name)
        return None if obj is None else obj["spec"].get("holderIdentity")

    def drained(self, chosen: Any) -> bool:
        return not any(n and chosen(ns) for ns, n in self.writing.items())


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


SETTINGS = LeaseSettings(name="shard-0", lease_duration=15, renew_deadline=10, retry_period=2)


def elector(leases: Leases, clock: Clock, identity: str, role: Role, drained: Any = None) -> LeaderElector:
    e = LeaderElector(
        leases,  # type: ignore[arg-type]
        LeaseSettings(**{**SETTINGS.__dict__, "identity": identity}),
        clock=clock,
        wall=lambda: datetime(2026, 12, 7, tzinfo=UTC),
        role=role,
        drained=drained or (lambda: True),
    )
    return e


async def attempt(e: LeaderElector) -> bool:
    """One round of the elector's loop."""
    ok = await e.try_acquire_or_renew()
    if ok:
        e._set_leading(True, "test")
    else:
        _ = e.is_leader
    return ok


def test_a_namespace_has_one_stable_shard_and_shards_are_even() -> None:
    # fixed values: every replica, every restart and every version must agree (not Python's salted hash)
    assert [shard_of(ns, 3) for ns in ("default", "team-a", "team-b", "payments")] == [0, 0, 1, 2]
    assert shard_of("anything", 1) == 0
    counts = collections.Counter(shard_of(f"ns-{i}", 3) for i in range(3000))
    assert set(counts) == {0, 1, 2} and max(counts.values()) < 1.1 * 1000


def test_a_statefulset_pods_ordinal_is_its_home_shard() -> None:
    assert home_from_pod_name("knative-rollout-2", 3) == 2
    assert home_from_pod_name("knative-rollout-4", 3) == 1
    assert home_from_pod_name("knative-rollout-7d9f8-abcde", 3) is None
    assert lease_name("ctl", 1, 3) == "ctl-shard-1" and lease_name("ctl", 0, 1) == "ctl"


async def test_a_stand_in_creates_a_missing_lease_only_after_a_full_duration() -> None:
    leases, clock = Leases(), Clock()
    stand_in = elector(leases, clock, "b", "stand-in")
    assert not await attempt(stand_in)
    clock.t += 14
    assert not await attempt(stand_in)
    assert leases.holder("shard-0") is None
    clock.t += 1.5  # the home replica never came: the shard must not stay unserved
    assert await attempt(stand_in)
    assert leases.holder("shard-0") == "b"


async def test_the_home_replica_takes_its_shard_back_from_a_stand_in() -> None:
    leases, clock = Leases(), Clock()
    home, stand_in = elector(leases, clock, "a", "home"), elector(leases, clock, "b", "stand-in")
    assert await attempt(home)
    assert not await attempt(stand_in)
    clock.t += 16  # the home replica died: its Lease expires and the stand-in takes over
    assert await attempt(stand_in) and stand_in.is_leader
    back = elector(leases, clock, "a2", "home")  # the pod is back, with a new identity
    assert not await attempt(back)
    assert leases.objs["shard-0"]["metadata"]["annotations"][HOME_WAITING] == "a2"
    # the stand-in stops writing at its next renewal and releases the Lease for a full duration
    assert not await attempt(stand_in)
    assert not stand_in.is_leader and leases.holder("shard-0") is None
    with pytest.raises(NotLeader):
        stand_in.check("team-a")
    other = elector(leases, clock, "c", "stand-in")  # a third replica keeps off while the home one waits
    assert not await attempt(other)
    assert await attempt(back) and back.is_leader
    assert HOME_WAITING not in leases.objs["shard-0"]["metadata"].get("annotations", {})
    assert not await attempt(stand_in) and not await attempt(other)


async def test_a_stand_in_hands_back_only_once_its_writes_have_landed() -> None:
    leases, clock = Leases(), Clock()
    in_flight = [True]
    stand_in = elector(leases, clock, "b", "stand-in", drained=lambda: not in_flight[0])
    assert not await attempt(stand_in)
    clock.t += 16
    assert await attempt(stand_in)
    back = elector(leases, clock, "a", "home")
    assert not await attempt(back)  # asks
    assert not await attempt(stand_in)
    assert not stand_in.is_leader  # no new writes from here on
    assert leases.holder("shard-0") == "b"  # but it still holds the Lease: a write of its is in flight
    assert not await attempt(back)
    in_flight[0] = False
    assert not await attempt(stand_in)
    assert leases.holder("shard-0") is None
    assert await attempt(back)


async def test_a_home_replica_that_died_while_waiting_does_not_leave_its_shard_unserved() -> None:
    leases, clock = Leases(), Clock()
    stand_in = elector(leases, clock, "b", "stand-in")
    assert not await attempt(stand_in)
    clock.t += 16
    assert await attempt(stand_in)
    assert not await attempt(elector(leases, clock, "a", "home"))  # asks, then dies
    assert not await attempt(stand_in)  # hands back
    clock.t += 16  # nobody took it for a full duration
    assert await attempt(stand_in)
    assert HOME_WAITING not in leases.objs["shard-0"]["metadata"].get("annotations", {})
    clock.t += 2
    assert await attempt(stand_in)  # no stale request makes it hand back again
    assert stand_in.is_leader


async def test_each_shard_fences_the_writes_of_its_namespaces() -> None:
    leases, clock = Leases(), Clock()
    settings = LeaseSettings(name="ctl", identity="a", lease_duration=15, renew_deadline=10, retry_period=2)
    shards = ShardElector(leases, settings, shards=3, home=0, clock=clock)  # type: ignore[arg-type]
    for e in shards.electors:
        ok = await e.try_acquire_or_renew()
        if ok:
            e._set_leading(True, "test")
    assert sorted(leases.objs) == ["ctl-shard-0"]  # the others' Leases are their home replicas' to create
    assert shards.held == [0]
    mine = next(ns for ns in (f"ns-{i}" for i in range(50)) if shard_of(ns, 3) == 0)
    theirs = next(ns for ns in (f"ns-{i}" for i in range(50)) if shard_of(ns, 3) == 1)
    assert shards.owns(mine) and not shards.owns(theirs)
    shards.check(mine)
    with pytest.raises(NotLeader):
        shards.check(theirs)
