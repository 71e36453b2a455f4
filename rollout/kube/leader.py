"""Leader election on a coordination.k8s.io/v1 Lease (client-go's algorithm), with a write fence.

Candidates try to acquire or renew the Lease every `retry_period`. A Lease held by someone else is taken
over only when its record has not changed for `lease_duration` seconds as seen by the local clock (never
trusting the holder's clock). The leader renews every `retry_period`; it counts as leader only while its
last successful renewal is younger than `renew_deadline` (< lease_duration): `check()` — the fence that the
KubeClient runs before every write — raises NotLeader at once after that, or as soon as a renewal finds
another holder. So a replica that loses its lease stops writing before anyone else can have taken over.
On shutdown the leader releases the Lease (empty holder), so a standby takes over without waiting.
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
from typing import Any

import structlog

from rollout.kube.client import KubeClient, KubeError, NotLeader, Obj
from rollout.kube.resources import LEASES

log = structlog.get_logger(__name__)


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
    duration = float(spec.get("leaseDurationSeconds") or lease_duration)
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
    ) -> None:
        self.client = client
        self.settings = settings
        self.identity = settings.identity or default_identity()
        self._clock = clock
        self._wall = wall
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
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

    def check(self) -> None:
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
        record = record_of(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        if holder and holder != self.identity and self._leading:
            self._set_leading(False, f"lease taken by {holder}")
        if not may_acquire(lease, self.identity, self._observed_at, self._clock(), s.lease_duration):
            return False
        updated = {**lease, "spec": next_spec(lease, self.identity, self._wall(), s.lease_duration)}
        try:
            result = await self.client.replace(LEASES, s.namespace, s.name, updated, fenced=False)
        except KubeError as exc:
            if exc.conflict:
                return False
            raise
        self._observe(result, sent)
        self._renewed_at = sent
        return True

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
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = {k: v for k, v in (lease.get("spec") or {}).items() if k != "holderIdentity"}
            spec.update({"leaseDurationSeconds": 1, "renewTime": micro_time(self._wall())})
            await self.client.replace(LEASES, s.namespace, s.name, {**lease, "spec": spec}, fenced=False)
        except KubeError as exc:
            log.warning("lease release failed", identity=self.identity, error=str(exc))
