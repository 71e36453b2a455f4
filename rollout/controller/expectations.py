"""Our own writes, and what the informers' events of them mean: the one place that knows (in the spirit of
client-go's ControllerExpectations and kopf's `expected_version`).

The rules:
1. A write's answer is noted with the version it replaced (`note_written`). Until the informer cache moves
   past that version, a cached object still at it is stale, and `fresher` gives the answer instead: the next
   reconcile does not compute from, nor fail a precondition on, what it already changed.
2. A MODIFIED event whose version is a noted answer is that write's echo: it tells the reconcile that wrote
   it nothing it did not know, so it queues nothing.
3. A create's answer is noted when the reconcile that created the object goes on to drive it
   (`note_created`); the ADDED event of that version is the create's echo and queues nothing (recognised
   once, then forgotten).
4. Under load an event can reach the controller before the write's answer does. An event for a key whose
   reconcile is still running is therefore held (`observe`) and judged once that reconcile ends
   (`release`): dropped if it was the echo, delivered if not.
5. Memory is bounded: past `limit` noted answers (or creates) the oldest are forgotten; forgetting only
   costs a reconcile that finds nothing to do.

The worker loop owns an instance: it asks `observe` about each event of a target or a Rollout and calls
`release` after each reconcile; the reconcilers note their writes and read through `fresher`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollout.controller.slim import slimmer
from rollout.controller.views import ObjectKey
from rollout.kube.client import Obj

Ident = tuple[str, str, str]  # kind, namespace, name


def _ident(kind: str, obj: Obj) -> Ident:
    meta = obj.get("metadata") or {}
    return (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True)
class _Held:
    kind: str
    obj: Obj
    created: bool
    deliver: Callable[[], None]


class Expectations:
    """See the module docstring. `running(key)`: a reconcile of `key` is in progress."""

    def __init__(self, running: Callable[[ObjectKey], bool] = lambda key: False, limit: int = 10000) -> None:
        self.running = running
        self.limit = limit
        self._written: dict[Ident, tuple[str, Obj]] = {}  # -> (the version replaced, the answer)
        self._created: dict[Ident, str] = {}  # -> the version our create returned
        self._held: dict[ObjectKey, list[_Held]] = {}

    # --- what the reconcilers tell and ask ----------------------------------------------------------

    def note_written(self, kind: str, replaced_rv: str, obj: Obj) -> None:
        obj = slimmer(kind)(obj)  # kept as the informers keep it (rollout.controller.slim)
        ident = _ident(kind, obj)
        self._written.pop(ident, None)
        self._written[ident] = (replaced_rv, obj)
        while len(self._written) > self.limit:
            self._written.pop(next(iter(self._written)))

    def note_created(self, kind: str, obj: Obj) -> None:
        ident = _ident(kind, obj)
        self._created.pop(ident, None)
        self._created[ident] = _rv(obj)
        while len(self._created) > self.limit:
            self._created.pop(next(iter(self._created)))

    def fresher(self, kind: str, cached: Obj) -> Obj:
        """Our write's answer while the cache still holds the version it replaced; else `cached`."""
        ident = _ident(kind, cached)
        found = self._written.get(ident)
        if found is None:
            return cached
        replaced, obj = found
        if _rv(cached) == replaced:
            return obj
        del self._written[ident]  # the cache has moved past our write
        return cached

    # --- what the worker loop asks --------------------------------------------------------------------

    def observe(
        self, key: ObjectKey, kind: str, obj: Obj, deliver: Callable[[], None], *, created: bool
    ) -> None:
        """An informer event of `obj` (a MODIFIED target, or with `created` an ADDED Rollout), whose
        reconciles run under `key`: `deliver` it unless it is the echo of our own write or create."""
        if self._echo(kind, obj, created):
            return
        if self.running(key):
            self._held.setdefault(key, []).append(_Held(kind, obj, created, deliver))
            return
        deliver()

    def release(self, key: ObjectKey) -> None:
        """The reconcile of `key` has ended: deliver the events held meanwhile that were not its echoes."""
        for held in self._held.pop(key, ()):
            if not self._echo(held.kind, held.obj, held.created):
                held.deliver()

    def _echo(self, kind: str, obj: Obj, created: bool) -> bool:
        ident = _ident(kind, obj)
        if created:
            if ident in self._created and self._created[ident] == _rv(obj):
                del self._created[ident]
                return True
            return False
        found = self._written.get(ident)
        return found is not None and _rv(found[1]) == _rv(obj)
