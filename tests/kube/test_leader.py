"""Leader election against an in-memory Lease with API-server semantics (resourceVersion preconditions)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from rollout.kube.client import KubeError, NotLeader
from rollout.kube.leader import LeaderElector, LeaseSettings, may_acquire, next_spec


class LeaseStore:
    """get / create_unfenced / replace of one Lease, with 409 on a stale resourceVersion."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.rv = 0
        self.fail = False

    def _check(self) -> None:
        if self.fail:
            raise KubeError(503, "ServiceUnavailable", "injected")

    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        return copy.deepcopy(self.obj)

    async def create_unfenced(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if self.obj is not None:
            raise KubeError(409, "AlreadyExists", "exists")
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.obj)

    async def replace(
        self, resource: Any, namespace: str, name: str, body: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        self._check()
        assert self.obj is not None
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "modified")
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.obj)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


SETTINGS = LeaseSettings(lease_duration=15, renew_deadline=10, retry_period=2)


def elector(store: LeaseStore, clock: Clock, identity: str) -> LeaderElector:
    settings = LeaseSettings(**{**SETTINGS.__dict__, "identity": identity})
    return LeaderElector(store, settings, clock=clock, wall=lambda: datetime(2026, 11, 25, tzinfo=UTC))  # type: ignore[arg-type]


async def test_first_candidate_acquires_and_the_other_waits_a_full_lease_duration() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    a._set_leading(True, "test")
    assert not await b.try_acquire_or_renew()
    clock.t += 14  # a stops renewing; b has seen the same record for 14s < 15s
    assert not await b.try_acquire_or_renew()
    clock.t += 1.5
    assert await b.try_acquire_or_renew()
    assert store.obj is not None and store.obj["spec"]["holderIdentity"] == "b"
    assert store.obj["spec"]["leaseTransitions"] == 1


async def test_the_fence_closes_at_the_renew_deadline_without_a_successful_renewal() -> None:
    store, clock = LeaseStore(), Clock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    a._set_leading(True, "test")
    a.check()
    store.fail = True
    clock.t += 9.9
    a.check()  # still inside the renew deadline
    clock.t += 0.2
    with pytest.raises(NotLeader):
        a.check()
    assert not a.is_leader


async def test_a_leader_that_sees_another_holder_stops_at_once() -> None:
    store, clock = LeaseStore(), Clock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    a._set_leading(True, "test")
    assert store.obj is not None
    store.obj["spec"]["holderIdentity"] = "thief"  # someone overwrote the lease
    clock.t += 1
    assert not await a.try_acquire_or_renew()
    with pytest.raises(NotLeader):
        a.check()


async def test_release_hands_over_without_waiting() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    a._set_leading(True, "test")
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert store.obj is not None and "holderIdentity" not in store.obj["spec"]
    assert await b.try_acquire_or_renew()


def test_pure_rules() -> None:
    lease = {"spec": {"holderIdentity": "x", "leaseDurationSeconds": 10}}
    assert may_acquire(lease, "x", observed_at=0, now=0, lease_duration=15)
    assert not may_acquire(lease, "y", observed_at=0, now=9.9, lease_duration=15)
    assert may_acquire(lease, "y", observed_at=0, now=10, lease_duration=15)
    assert may_acquire({"spec": {}}, "y", observed_at=0, now=0, lease_duration=15)
    wall = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    spec = next_spec(lease, "y", wall, 15)
    assert spec["renewTime"] == "2026-11-25T12:00:00.123456Z" and spec["leaseDurationSeconds"] == 15
