"""Leader election on a coordination.k8s.io/v1 Lease (client-go's algorithm), with a write fence.

Candidates try to acquire or renew the Lease every `retry_period`. A Lease held by someone else is taken
over only when its record has not changed for `lease_duration` seconds as seen by the local clock (never
trusting the holder's clock). The leader renews every `retry_period`; it counts as leader only while its
last successful renewal is younger than `renew_deadline` (< lease_duration): `check()` — the fence that the
KubeClient runs before every write — raises NotLeader at once after that, or as soon as a renewal finds
another holder. So a replica that loses its lease stops writing before anyone else can have taken over.
On shutdown the leader releases the Lease (empty holder), so a standby takes over without waiting.

With shards (rollout.kube.shards) a Lease has a home replica and stand-ins. A stand-in takes a Lease only
once it expired (or was released while nobody waits for it); a home replica that finds its Lease held by a
stand-in asks for it back (annotation HOME_WAITING), and the stand-in releases it at its next renewal.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from rollout.kube.client import KubeClient, KubeError, NotLeader, Obj
from rollout.kube.resources import LEASES

log = structlog.get_logger(__name__)

Role = Literal["leader", "home", "stand-in"]
HOME_WAITING = "knrollout.dev/home-waiting"  # on a shard's Lease: its home replica asks for it back


def default_identity() -> str:
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseSettings:
    name: str = "knative-rollout-controller"
    namespace: str = "default"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")


def micro_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_of(lease: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """The part of a Lease whose change proves its holder is alive."""
    spec = (lease or {}).get("spec") or {}
    return (
        spec.get("holderIdentity"),
        spec.get("renewTime"),
        spec.get("acquireTime"),
        spec.get("leaseTransitions"),
        spec.get("leaseDurationSeconds"),
    )


def may_acquire(
    lease: Mapping[str, Any], identity: str, observed_at: float, now: float, lease_duration: float
) -> bool:
    """Pure: whether `identity` may write itself into `lease` now. `observed_at` is the local monotonic time at
    which the current record was first seen."""
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    if not holder or holder == identity:
        return True
    return expired(lease, observed_at, now, lease_duration)


def may_stand_in(
    lease: Mapping[str, Any], identity: str, observed_at: float, now: float, lease_duration: float
) -> bool:
    """Pure: whether a stand-in (not the Lease's home replica) may write itself into `lease` now: as any
    candidate, except that while the home replica waits for it, only an expired Lease may be taken (the home
    replica may have died while waiting)."""
    if not home_waiting(lease):
        return may_acquire(lease, identity, observed_at, now, lease_duration)
    return expired(lease, observed_at, now, lease_duration)


def home_waiting(lease: Mapping[str, Any]) -> str:
    return str(((lease.get("metadata") or {}).get("annotations") or {}).get(HOME_WAITING) or "")


def expired(lease: Mapping[str, Any], observed_at: float, now: float, lease_duration: float) -> bool:
    duration = float((lease.get("spec") or {}).get("leaseDurationSeconds") or lease_duration)
    return now >= observed_at + duration


def next_spec(
    lease: Mapping[str, Any] | None, identity: str, wall: datetime, duration: float
) -> dict[str, Any]:
    spec = dict((lease or {}).get("spec") or {})
    mine = spec.get("holderIdentity") == identity
    transitions = int(spec.get("leaseTransitions") or 0)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": max(round(duration), 1),
        "acquireTime": spec.get("acquireTime") if mine and spec.get("acquireTime") else micro_time(wall),
        "renewTime": micro_time(wall),
        "leaseTransitions": transitions if mine or lease is None else transitions + 1,
    }


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        settings: LeaseSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        role: Role = "leader",
        drained: Callable[[], bool] = lambda: True,
    ) -> None:
        """`role`: "leader" (the one Lease of leader election), "home" (a shard's own replica, which asks a
        stand-in for it back) or "stand-in" (another replica's shard, held only while that one is away)."""
        self.client = client
        self.settings = settings
        self.role = role
        self._drained = drained  # none of this Lease's writes in flight (a stand-in hands back only then)
        self.identity = settings.identity or default_identity()
        self._clock = clock
        self._wall = wall
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._missing_since: float | None = None  # a stand-in first found the Lease missing
        self._renewed_at: float | None = None  # monotonic time the last successful write was SENT
        self._leading = False
        self.leading_changed = asyncio.Event()
        self.transitions = 0
        self._callbacks: list[Callable[[bool], None]] = []

    # --- the fence -------------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        if not self._leading or self._renewed_at is None:
            return False
        if self._clock() - self._renewed_at >= self.settings.renew_deadline:
            self._set_leading(False, "renew deadline passed")
            return False
        return True

    def check(self, namespace: str | None = None) -> None:
        if not self.is_leader:
            raise NotLeader(
                f"{self.identity} does not hold lease {self.settings.namespace}/{self.settings.name}"
            )

    def on_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    def _set_leading(self, leading: bool, why: str) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        self.transitions += 1
        log.info("leadership changed", leader=leading, identity=self.identity, why=why)
        self.leading_changed.set()
        for cb in list(self._callbacks):
            cb(leading)

    # --- one attempt -----------------------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        s = self.settings
        sent = self._clock()
        lease = await self.client.get(LEASES, s.namespace, s.name)
        if lease is None:
            return await self._create(sent)
        record = record_of(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        if holder and holder != self.identity and self._leading:
            self._set_leading(False, f"lease taken by {holder}")
        if not await self._may_take(lease, holder):
            return False
        updated = {**lease, "spec": next_spec(lease, self.identity, self._wall(), s.lease_duration)}
        if home_waiting(lease) and holder != self.identity:
            # the home replica takes what it waited for; a stand-in takes it only once expired: the home
            # replica that asked is gone (alive, it asks again)
            updated["metadata"] = _without_waiting(lease)
        try:
            result = await self.client.replace(LEASES, s.namespace, s.name, updated, fenced=False)
        except KubeError as exc:
            if exc.conflict:
                return False
            raise
        self._observe(result, sent)
        self._renewed_at = sent
        return True

    async def _create(self, sent: float) -> bool:
        s = self.settings
        if self.role == "stand-in":
            # the home replica creates its shard's Lease; a stand-in only once it stayed missing a duration
            if self._missing_since is None:
                self._missing_since = self._clock()
            if self._clock() < self._missing_since + s.lease_duration:
                return False
        body: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": s.name, "namespace": s.namespace},
            "spec": next_spec(None, self.identity, self._wall(), s.lease_duration),
        }
        try:
            created = await self.client.create_unfenced(LEASES, s.namespace, body)
        except KubeError as exc:
            if exc.already_exists or exc.conflict:
                return False
            raise
        self._observe(created, sent)
        self._renewed_at = sent
        return True

    async def _may_take(self, lease: Obj, holder: str) -> bool:
        """Whether to write ourselves into `lease` now; a stand-in asked for it hands it back instead, and a
        home replica that finds a stand-in holding it asks for it."""
        s, now = self.settings, self._clock()
        if self.role == "stand-in":
            if holder == self.identity and home_waiting(lease):
                await self._hand_back(lease)
                return False
            return may_stand_in(lease, self.identity, self._observed_at, now, s.lease_duration)
        if may_acquire(lease, self.identity, self._observed_at, now, s.lease_duration):
            return True
        if self.role == "home" and home_waiting(lease) != self.identity:
            await self._ask_back(lease)
        return False

    async def _ask_back(self, lease: Obj) -> None:
        """The home replica asks the stand-in holding its Lease to hand it back."""
        meta = dict(lease.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), HOME_WAITING: self.identity}
        try:
            await self.client.replace(
                LEASES, self.settings.namespace, self.settings.name, {**lease, "metadata": meta}, fenced=False
            )
        except KubeError as exc:
            if not exc.conflict:
                raise
        log.info("asked for the shard back", lease=self.settings.name, identity=self.identity)

    async def _hand_back(self, lease: Obj) -> None:
        """A stand-in gives the Lease to its waiting home replica: it stops writing first, keeps renewing
        while writes it sent before are still in flight, then releases."""
        s = self.settings
        self._set_leading(False, f"handing back to {home_waiting(lease)}")
        if not self._drained():
            spec = next_spec(lease, self.identity, self._wall(), s.lease_duration)
            try:
                await self.client.replace(LEASES, s.namespace, s.name, {**lease, "spec": spec}, fenced=False)
            except KubeError as exc:
                if not exc.conflict:
                    raise
            return
        # a full duration: other stand-ins keep off while the home replica takes it at its next retry
        await self._write_released(lease, s.lease_duration)

    async def _write_released(self, lease: Obj, duration: float = 1.0) -> None:
        spec = {k: v for k, v in (lease.get("spec") or {}).items() if k != "holderIdentity"}
        spec.update({"leaseDurationSeconds": max(round(duration), 1), "renewTime": micro_time(self._wall())})
        s = self.settings
        try:
            released = await self.client.replace(
                LEASES, s.namespace, s.name, {**lease, "spec": spec}, fenced=False
            )
        except KubeError as exc:
            log.warning("lease release failed", lease=s.name, identity=self.identity, error=str(exc))
            return
        self._observe(released, self._clock())  # the release starts the record's age

    def _observe(self, lease: Obj, at: float) -> None:
        self._observed, self._observed_at = record_of(lease), at

    # --- loops -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Acquire, then renew, forever (cancel to stop; call `release` afterwards)."""
        s = self.settings
        while True:
            try:
                async with asyncio.timeout(s.renew_deadline):  # not wait_for (cancellation-safe on 3.11)
                    ok = await self.try_acquire_or_renew()
            except (KubeError, TimeoutError) as exc:
                log.warning(
                    "lease attempt failed", identity=self.identity, error=str(exc) or type(exc).__name__
                )
                ok = False
            if ok:
                self._set_leading(True, "acquired or renewed")
            else:
                _ = self.is_leader  # drops leadership once the renew deadline has passed
            await asyncio.sleep(s.retry_period)

    async def release(self) -> None:
        """Give the lease up (if held), so that a standby takes over at once."""
        s = self.settings
        was_leader = self.is_leader
        self._set_leading(False, "released")
        if not was_leader:
            return
        try:
            lease = await self.client.get(LEASES, s.namespace, s.name)
        except KubeError as exc:
            log.warning("lease release failed", lease=s.name, identity=self.identity, error=str(exc))
            return
        if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
            await self._write_released(lease)


def _without_waiting(lease: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(lease.get("metadata") or {})
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k != HOME_WAITING}
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    return meta
