"""Fault injection for tests, switchable at run time: fail a share of requests (500, 429 with Retry-After,
409, 503, 504), add latency, drop watch streams, force 410 Expired on new watches.

Every fault is bounded: by a count of injections, a duration, or both (an unbounded fault is refused).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rollout_lab.sandbox.store_api import ApiError

ACTIONS = ("error", "latency", "drop-watch", "expire-watch")
ERROR_CODES = (409, 429, 500, 503, 504)
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
MAX_DURATION = 3600.0


@dataclass
class Fault:
    """One injected fault. `resources` match a plural (`services`) or plural.group; `verbs` as in RBAC.
    `latency` is the delay of a latency fault; `after` is how long a watch stream lives under drop-watch."""

    action: str
    code: int = 500
    retry_after: int = 1
    share: float = 1.0
    count: int | None = None
    duration: float | None = None
    latency: float = 0.0
    after: float = 0.0
    verbs: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    namespace: str | None = None
    id: str = ""
    injected: int = 0
    expires_at: float | None = field(default=None, repr=False)

    def check(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        if self.action == "error" and self.code not in ERROR_CODES:
            raise ValueError(f"code must be one of {ERROR_CODES}, not {self.code}")
        if not 0.0 < self.share <= 1.0:
            raise ValueError(f"share must be in (0, 1], not {self.share}")
        if self.count is None and self.duration is None:
            raise ValueError("a fault must be bounded: give count, duration or both")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.duration is not None and not 0 < self.duration <= MAX_DURATION:
            raise ValueError(f"duration must be in (0, {MAX_DURATION:.0f}] seconds")
        if not 0 <= self.latency <= 60 or not 0 <= self.after <= MAX_DURATION:
            raise ValueError("latency must be in [0, 60] seconds and after in [0, 3600] seconds")
        unknown = [v for v in self.verbs if v not in VERBS]
        if unknown:
            raise ValueError(f"unknown verbs {unknown}; known: {', '.join(VERBS)}")

    def matches(self, verb: str, resource: str, namespace: str | None) -> bool:
        if self.verbs and verb not in self.verbs:
            return False
        if self.resources and not any(
            resource == r or resource.split(".", 1)[0] == r for r in self.resources
        ):
            return False
        return self.namespace is None or self.namespace == namespace

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("expires_at")
        out["verbs"] = list(self.verbs)
        out["resources"] = list(self.resources)
        return out


class FaultInjector:
    """The active faults. `clock` is monotonic seconds; `seed` makes the share draws reproducible."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, seed: int | None = None) -> None:
        self.clock = clock
        self._random = random.Random(seed)
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[Fault], None]] = []

    def on_add(self, listener: Callable[[Fault], None]) -> None:
        """Hear of each new fault (the server drops open watch streams on a drop-watch fault)."""
        self._listeners.append(listener)

    def add(self, fault: Fault | None = None, **fields: Any) -> Fault:
        """Activate a fault (a Fault, or its fields as keywords); ValueError when it is invalid."""
        if fault is None:
            for key in ("verbs", "resources"):
                if key in fields and isinstance(fields[key], list | str):
                    value = fields[key]
                    fields[key] = (value,) if isinstance(value, str) else tuple(value)
            try:
                fault = Fault(**fields)
            except TypeError as err:
                raise ValueError(str(err)) from None
        fault.check()
        fault.id = fault.id or f"fault-{next(self._ids)}"
        fault.injected = 0
        fault.expires_at = self.clock() + fault.duration if fault.duration is not None else None
        self._faults.append(fault)
        for listener in list(self._listeners):
            listener(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) < before

    def clear(self) -> None:
        self._faults.clear()

    def active(self) -> list[Fault]:
        now = self.clock()
        self._faults = [
            f
            for f in self._faults
            if (f.expires_at is None or f.expires_at > now) and (f.count is None or f.injected < f.count)
        ]
        return list(self._faults)

    def pick(self, action: str, verb: str, resource: str, namespace: str | None) -> Fault | None:
        """The fault to inject now for this request, if any (counts the injection)."""
        for fault in self.active():
            if fault.action != action or not fault.matches(verb, resource, namespace):
                continue
            if fault.share < 1.0 and self._random.random() >= fault.share:
                continue
            fault.injected += 1
            return fault
        return None

    def consume(self, fault: Fault) -> bool:
        """Count one injection of `fault` outside `pick` (dropping an open stream); False when spent."""
        if fault not in self.active():
            return False
        if fault.share < 1.0 and self._random.random() >= fault.share:
            return False
        fault.injected += 1
        return True


def injected_error(fault: Fault, resource: str, name: str | None) -> ApiError:
    """The Status error a fault answers with, worded as the real server words that error."""
    if fault.code == 429:
        return ApiError(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            {"retryAfterSeconds": fault.retry_after},
        )
    if fault.code == 409:
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {resource} "{name or ""}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            {"name": name or "", "kind": resource.split(".", 1)[0]},
        )
    if fault.code == 503:
        return ApiError(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            {"retryAfterSeconds": fault.retry_after},
        )
    if fault.code == 504:
        return ApiError(
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted, "
            "but may still be processing the request",
            {"retryAfterSeconds": fault.retry_after},
        )
    return ApiError(
        500,
        "InternalError",
        "Internal error occurred: injected fault (sandbox)",
        {"causes": [{"message": "injected fault (sandbox)"}]},
    )
