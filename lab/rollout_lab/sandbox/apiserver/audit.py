"""The sandbox API server's audit log: who wrote what, and when (Kubernetes' audit log at the
ResponseComplete stage, for writes only).

Each successful create, update, patch or delete is recorded with the client's User-Agent (the controller's
names its replica) and the object it wrote. Tests read it to check which replica wrote which object, e.g. that
no two shards ever write the same target. Bounded: the oldest entries go first."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class AuditEvent:
    at: float  # time.monotonic() when the answer was ready
    user_agent: str
    verb: str
    resource: str  # resource.group, e.g. services.serving.knative.dev ("events" for the core group)
    namespace: str | None
    name: str | None
    subresource: str | None
    code: int


class AuditLog:
    def __init__(self, limit: int = 200_000) -> None:
        self._events: deque[AuditEvent] = deque(maxlen=limit)

    def record(self, event: AuditEvent) -> None:
        self._events.append(event)

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)


def now() -> float:
    return time.monotonic()
