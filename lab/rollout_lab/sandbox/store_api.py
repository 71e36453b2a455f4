"""The seam between the sandbox API server's object store and what runs inside it (Knative simulator,
admission of Knative's webhook rules, traffic generator).

The store is in-process and single-threaded (asyncio): reads and writes are plain method calls; only
watching is asynchronous. Objects are plain JSON-like dicts, exactly what the REST API returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Obj = dict[str, Any]
Operation = Literal["CREATE", "UPDATE", "DELETE"]
EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: `group` is "" for the core API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    has_status: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


class ApiError(Exception):
    """An error the API server returns as a `Status` object (reason as in Kubernetes, e.g. NotFound,
    AlreadyExists, Conflict, Invalid, Expired, UnsupportedMediaType)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: Obj


class ObjectStore(Protocol):
    """What in-process components (the Knative simulator, the traffic generator) use.

    Writes raise ApiError exactly where the REST API would answer with an error. `update` with
    `subresource="status"` changes only `.status` (and never bumps generation); without it, `.status` is
    ignored. A `metadata.resourceVersion` in an updated object is a precondition (409 Conflict if stale).
    Writes are recorded in `metadata.managedFields` under `field_manager` (None: the store's default).
    """

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None: ...

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[Obj], str]: ...

    def create(self, rt: ResourceType, obj: Obj, *, field_manager: str | None = None) -> Obj: ...

    def update(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
        copy_result: bool = True,
    ) -> Obj:
        """Replace an object; `copy_result=False`: the answer may be the stored object itself (read-only),
        for a caller that does not keep it."""
        ...

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """Delete (404 when missing): None once the object is gone, or the object still present, with
        deletionTimestamp set, while finalizers are pending."""
        ...

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]: ...


class Admission(Protocol):
    """A mutating + validating admission step for one resource type, run by the store before a write is
    persisted (like a Knative webhook). Returns the (possibly defaulted) object or raises ApiError(422).
    `old` is the stored object itself (read-only: a hook must not change it, as a webhook cannot)."""

    def admit(self, rt: ResourceType, operation: Operation, obj: Obj, old: Obj | None) -> Obj: ...
