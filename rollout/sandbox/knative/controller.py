"""The Knative simulator's thin async shell: snapshot the store, `plan`, apply the writes, repeat.

It wakes on every committed write of a Knative kind (when the store offers `on_commit`), when a revision or
pod of the simulated fleet becomes ready, and on the autoscaler's tick. Each wake-up runs passes until one
writes nothing. Runs on any `Clock` (wall or virtual).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import structlog

from rollout.sandbox.apiserver import kinds
from rollout.sandbox.clock import Clock
from rollout.sandbox.knative.admission import KnativeAdmission
from rollout.sandbox.knative.fleet import Fleet
from rollout.sandbox.knative.plan import KINDS, Create, Delete, Kind, Settings, Snapshot, Update, Write, plan
from rollout.sandbox.readonly import list_readonly
from rollout.sandbox.store_api import ApiError, ObjectStore, ResourceType

log = structlog.get_logger(__name__)

RESOURCE_TYPES: Mapping[Kind, ResourceType] = {
    "services": kinds.KSERVICES,
    "configurations": kinds.CONFIGURATIONS,
    "routes": kinds.ROUTES,
    "revisions": kinds.REVISIONS,
}
_IGNORED_REASONS = {"Conflict", "NotFound", "AlreadyExists"}


class KnativeSimulator:
    def __init__(
        self,
        store: ObjectStore,
        clock: Clock,
        *,
        fleet: Fleet | None = None,
        settings: Settings | None = None,
        autoscale_tick: float = 2.0,
        max_passes: int = 25,
    ) -> None:
        self.store = store
        self.clock = clock
        self.fleet = fleet if fleet is not None else Fleet()
        self.settings = settings if settings is not None else Settings()
        self.autoscale_tick = autoscale_tick
        self.max_passes = max_passes
        self.admission = KnativeAdmission()
        self._dirty = asyncio.Event()
        self._next_autoscale = clock.now()
        self.passes = 0

    def install(self) -> None:
        """Register Knative's webhook and our wake-up listener with the store (when it offers hooks)."""
        register = getattr(self.store, "register_admission", None)
        on_commit = getattr(self.store, "on_commit", None)
        for rt in RESOURCE_TYPES.values():
            if register is not None:
                register(rt, self.admission)
            if on_commit is not None:
                on_commit(rt, self._on_commit)

    def _on_commit(self, rt: ResourceType, entry: Any) -> None:
        self._dirty.set()

    def snapshot(self) -> Snapshot:
        listing: dict[Kind, list[dict[str, Any]]] = {}
        for kind in KINDS:
            listing[kind] = list(list_readonly(self.store, RESOURCE_TYPES[kind]))
        return Snapshot.of(listing)

    def reconcile_once(self) -> int:
        """One pass: returns the number of writes the store accepted."""
        now = self.clock.now()
        snapshot = self.snapshot()
        self.fleet.sync(snapshot.objects["revisions"].values(), now)
        if now >= self._next_autoscale:
            self.fleet.autoscale(now)
            self._next_autoscale = now + self.autoscale_tick
        applied = 0
        writes = plan(snapshot, self.fleet, now, self.settings)
        # metadata/spec first, then status (status writes carry no resourceVersion)
        ordered = [w for w in writes if not (isinstance(w, Update) and w.status)] + [
            w for w in writes if isinstance(w, Update) and w.status
        ]
        for write in ordered:
            if self._apply(write):
                applied += 1
        self.passes += 1
        return applied

    def settle(self) -> int:
        """Run passes until one writes nothing (bounded); returns the total number of writes."""
        total = 0
        for _ in range(self.max_passes):
            applied = self.reconcile_once()
            total += applied
            if applied == 0:
                break
        return total

    def _apply(self, write: Write) -> bool:
        rt = RESOURCE_TYPES[write.kind]
        try:
            if isinstance(write, Create):
                self.store.create(rt, write.obj)
            elif isinstance(write, Update):
                self.store.update(rt, write.obj, subresource="status" if write.status else None)
            elif isinstance(write, Delete):
                self.store.delete(rt, write.namespace, write.name)
            return True
        except ApiError as err:
            if err.reason not in _IGNORED_REASONS:
                log.warning(
                    "sandbox.knative.write_failed", kind=write.kind, reason=err.reason, message=err.message
                )
            return False

    def next_wakeup(self, now: float) -> float:
        moments = [self._next_autoscale]
        change = self.fleet.next_change(now)
        if change is not None:
            moments.append(change)
        return max(min(moments), now)

    async def run(self) -> None:
        """Reconcile forever."""
        while True:
            self._dirty.clear()
            try:
                self.settle()
            except Exception:  # the simulator must survive one object's fault, like a controller
                log.exception("sandbox.knative.reconcile_failed")
            now = self.clock.now()
            await self._wait(self.next_wakeup(now) - now)

    async def _wait(self, seconds: float) -> None:
        if self._dirty.is_set():
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._dirty.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
