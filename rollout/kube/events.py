"""Kubernetes Events (core/v1, what `kubectl describe` shows) with specific reasons, Normal or Warning.

Repeats of the same event (same object, type, reason and message) within `repeat_window` are aggregated into
one Event whose `count` and `lastTimestamp` move, written at most every `min_interval` seconds, so that a
problem reported at every reconcile does not flood the API server. Events are best effort: a failed write is
logged, never raised (a lost lease still raises NotLeader through the client's fence).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from rollout.api.common import format_time
from rollout.kube.client import KubeClient, KubeError, Obj
from rollout.kube.resources import EVENTS

log = structlog.get_logger(__name__)
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class InvolvedObject:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""

    def to_wire(self) -> dict[str, str]:
        out = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }
        if self.uid:
            out["uid"] = self.uid
        return out


def involved(obj: Mapping[str, Any]) -> InvolvedObject:
    meta = obj.get("metadata") or {}
    return InvolvedObject(
        api_version=str(obj.get("apiVersion") or ""),
        kind=str(obj.get("kind") or ""),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
    )


class EventSink(Protocol):
    """Where a reconcile records its Events (an EventRecorder, or an EventQueue in front of one)."""

    async def record(self, obj: InvolvedObject, type_: str, reason: str, message: str) -> None: ...


@dataclass
class _Seen:
    name: str
    count: int
    written: int  # count last written
    first: datetime
    first_mono: float
    written_mono: float


EventKey = tuple[str, str, str, str, str, str, str]


class EventRecorder:
    def __init__(
        self,
        client: KubeClient,
        *,
        component: str = "knative-rollout",
        instance: str = "",
        repeat_window: float = 600.0,
        min_interval: float = 30.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.component = component
        self.instance = instance
        self.repeat_window = repeat_window
        self.min_interval = min_interval
        self.cache_size = cache_size
        self._clock = clock
        self._wall = wall
        self._seen: OrderedDict[EventKey, _Seen] = OrderedDict()
        self.written = 0
        self.aggregated = 0

    async def record(self, obj: InvolvedObject, type_: str, reason: str, message: str) -> None:
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
        key: EventKey = (obj.namespace, obj.kind, obj.name, obj.uid, type_, reason, message)
        now, wall = self._clock(), self._wall()
        seen = self._seen.get(key)
        if seen is not None and now - seen.first_mono < self.repeat_window:
            seen.count += 1
            self.aggregated += 1
            self._seen.move_to_end(key)
            if now - seen.written_mono < self.min_interval:
                return
            patch: Obj = {"count": seen.count, "lastTimestamp": format_time(wall)}
            try:
                await self.client.merge_patch(EVENTS, obj.namespace, seen.name, patch)
            except KubeError as exc:
                if not exc.not_found:
                    log.warning("event update failed", reason=reason, object=obj.name, error=str(exc))
                    return
                self._seen.pop(key, None)
                await self._create(key, obj, type_, reason, message, now, wall)
                return
            seen.written, seen.written_mono = seen.count, now
            self.written += 1
            return
        await self._create(key, obj, type_, reason, message, now, wall)

    async def _create(
        self,
        key: EventKey,
        obj: InvolvedObject,
        type_: str,
        reason: str,
        message: str,
        now: float,
        wall: datetime,
    ) -> None:
        name = f"{obj.name}.{uuid.uuid4().hex[:16]}"
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": obj.namespace},
            "involvedObject": obj.to_wire(),
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance or self.component,
            "firstTimestamp": format_time(wall),
            "lastTimestamp": format_time(wall),
            "count": 1,
        }
        try:
            await self.client.create(EVENTS, obj.namespace, body)
        except KubeError as exc:
            log.warning("event create failed", reason=reason, object=obj.name, error=str(exc))
            return
        self.written += 1
        self._seen[key] = _Seen(name, 1, 1, wall, now, now)
        while len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)
