"""The Knative simulator's thin async shell: follow the store's commits, reconcile what they touched (`plan`),
apply the writes, repeat.

Like Knative's controllers it works from a cache kept current by the store's change feed (`on_commit`, a
`KnativeIndex`) and a queue of objects to reconcile: each committed write of a Knative kind queues the object
and its dependents (a Service → its Configuration/Route; a Revision → its Configuration, the Routes that serve
it, the Service status; ...), so a write costs the reconcile of its neighbours, not of every object. Timers
queue revisions when they or their pods become ready, the autoscaler's tick queues the revisions it scaled,
and a configuration when one of its revisions becomes old enough to collect. A store without `on_commit` is
re-listed and fully reconciled on every pass. Runs on any `Clock` (wall or virtual).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Mapping
from typing import Any

import structlog

from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.clock import Clock
from rollout_lab.sandbox.knative.admission import KnativeAdmission
from rollout_lab.sandbox.knative.fleet import Fleet
from rollout_lab.sandbox.knative.gc import next_collection
from rollout_lab.sandbox.knative.index import KINDS, Kind, KnativeIndex, Ref
from rollout_lab.sandbox.knative.plan import Create, Delete, Settings, Update, Write, all_refs, plan
from rollout_lab.sandbox.readonly import list_readonly
from rollout_lab.sandbox.store_api import ApiError, ObjectStore, ResourceType

log = structlog.get_logger(__name__)

RESOURCE_TYPES: Mapping[Kind, ResourceType] = {
    "services": kinds.KSERVICES,
    "configurations": kinds.CONFIGURATIONS,
    "routes": kinds.ROUTES,
    "revisions": kinds.REVISIONS,
}
_KIND_OF = {rt.group_resource: kind for kind, rt in RESOURCE_TYPES.items()}
_IGNORED_REASONS = {"Conflict", "NotFound", "AlreadyExists"}
FIELD_MANAGER = "controller"  # as Knative Serving's controller appears in managedFields


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
        batch: int = 8,
    ) -> None:
        self.store = store
        self.clock = clock
        self.fleet = fleet if fleet is not None else Fleet()
        self.settings = settings if settings is not None else Settings()
        self.autoscale_tick = autoscale_tick
        self.max_passes = max_passes
        # Objects per pass in `run`; the API server answers between passes. In a cluster Knative's controllers
        # do not take the API server's CPU: with 64 objects (~25 ms) per pass, a wave of 1,000 traffic writes
        # held every API request behind the simulator (bench/scale.py: the controller's requests waited
        # seconds while Knative served each split within 0.03 s). 8 objects are a few ms.
        self.batch = batch
        self.admission = KnativeAdmission()
        self.index = KnativeIndex()
        self._dirty = asyncio.Event()
        self._queue: dict[Ref, None] = {}  # an ordered set: first queued, first reconciled
        self._gc_timers: list[tuple[float, Ref]] = []
        self._gc_scheduled: dict[Ref, float] = {}
        self._next_autoscale = clock.now()
        self._following = False  # the index follows the store's commits
        self._synced = False
        self.passes = 0
        self.reconciles = 0  # objects reconciled so far (a measure of the simulator's work)
        self.fleet.on_activate = self._dirty.set

    def install(self) -> None:
        """Register Knative's webhook and our change feed with the store (when it offers hooks)."""
        register = getattr(self.store, "register_admission", None)
        on_commit = getattr(self.store, "on_commit", None)
        for rt in RESOURCE_TYPES.values():
            if register is not None:
                register(rt, self.admission)
            if on_commit is not None:
                on_commit(rt, self._on_commit)
        self._following = on_commit is not None
        self._synced = False

    def _on_commit(self, rt: ResourceType, entry: Any) -> None:
        kind = _KIND_OF[rt.group_resource]
        if not self._synced:
            self._dirty.set()
            return  # the first pass lists everything anyway
        obj = None if entry.type == "DELETED" else entry.obj
        old = entry.obj if entry.type == "DELETED" else entry.old
        if kind == "revisions":
            if obj is None:
                self.fleet.forget((entry.namespace, entry.name))
            else:
                self.fleet.track(obj, self.clock.now())
        self._queue.update(dict.fromkeys(self.index.change(kind, obj, old)))
        self._dirty.set()

    def resync(self) -> None:
        """Re-list every Knative object and queue all of them (a full reconcile on the next pass)."""
        listing: dict[Kind, list[dict[str, Any]]] = {
            kind: list(list_readonly(self.store, RESOURCE_TYPES[kind])) for kind in KINDS
        }
        self.index = KnativeIndex.of(listing)
        self.fleet.sync(listing["revisions"], self.clock.now())
        self._queue = dict.fromkeys(all_refs(self.index))
        self._synced = self._following

    def reconcile_once(self, limit: int | None = None) -> int:
        """One pass over the queued objects (the first `limit` of them, when given): returns the number of
        writes the store accepted."""
        if not self._synced:
            self.resync()
        now = self.clock.now()
        if now >= self._next_autoscale:
            self.fleet.autoscale(now)
            self._next_autoscale = now + self.autoscale_tick
        for namespace, name in self.fleet.due(now):
            self._queue[("revisions", namespace, name)] = None
        while self._gc_timers and self._gc_timers[0][0] <= now:
            moment, ref = heapq.heappop(self._gc_timers)
            if self._gc_scheduled.get(ref) == moment:
                del self._gc_scheduled[ref]
                self._queue[ref] = None
        if limit is None or len(self._queue) <= limit:
            refs, self._queue = set(self._queue), {}
        else:
            taken = list(itertools.islice(self._queue, limit))
            refs = set(taken)
            for ref in taken:
                del self._queue[ref]
        self.reconciles += len(refs)
        applied = sum(
            1 for write in plan(self.index, refs, self.fleet, now, self.settings) if self._apply(write)
        )
        self._schedule_collection(refs, now)
        self.passes += 1
        return applied

    def _schedule_collection(self, refs: set[Ref], now: float) -> None:
        for ref in refs:
            kind, namespace, name = ref
            if kind != "configurations":
                continue
            configuration = self.index.get(kind, (namespace, name))
            if configuration is None:
                continue
            revisions = self.index.revisions_of_configuration((namespace, name))
            moment = next_collection(configuration, revisions, self.settings.gc, now)
            if moment is not None and self._gc_scheduled.get(ref) != moment:
                self._gc_scheduled[ref] = moment
                heapq.heappush(self._gc_timers, (moment, ref))

    def settle(self) -> int:
        """Run passes until nothing is queued (bounded); returns the total number of writes."""
        total = 0
        for _ in range(self.max_passes):
            applied = self.reconcile_once()
            total += applied
            if applied == 0 or (self._synced and not self._queue):
                break
        return total

    def _apply(self, write: Write) -> bool:
        rt = RESOURCE_TYPES[write.kind]
        try:
            if isinstance(write, Create):
                self.store.create(rt, write.obj, field_manager=FIELD_MANAGER)
            elif isinstance(write, Update):
                subresource = "status" if write.status else None
                self.store.update(  # the answer is not read: no copy of it
                    rt, write.obj, subresource=subresource, field_manager=FIELD_MANAGER, copy_result=False
                )
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
        change = self.fleet.next_change()
        if change is not None:
            moments.append(change)
        if self._gc_timers:
            moments.append(self._gc_timers[0][0])
        return max(min(moments), now)

    async def run(self) -> None:
        """Reconcile forever, `batch` objects per pass, yielding to the event loop between passes."""
        while True:
            self._dirty.clear()
            try:
                # a store without a change feed is re-listed and reconciled whole on every pass
                applied = self.reconcile_once(limit=self.batch if self._following else None)
                more = bool(self._queue) if self._following else applied > 0
            except Exception:  # the simulator must survive one object's fault, like a controller
                log.exception("sandbox.knative.reconcile_failed")
                self._synced = False  # start over from a fresh listing, at the next wake-up
                more = False
            if more:
                await asyncio.sleep(0)
                continue
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
