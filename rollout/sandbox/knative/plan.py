"""One reconcile pass of the whole Knative simulator, as a pure function: a snapshot of the Knative objects
(plus the simulated data plane, read-only) in, the writes Knative Serving would make out.

The async loop (`controller.py`) applies the writes and runs passes until one produces none. Each pass is
level-based: it looks only at the snapshot, so it converges from any state (and after any crash).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rollout.sandbox.knative import names
from rollout.sandbox.knative.configuration import (
    configuration_status,
    current_revision,
    desired_revision,
    revision_name,
)
from rollout.sandbox.knative.fleet import Fleet
from rollout.sandbox.knative.gc import GcSettings, revisions_to_collect
from rollout.sandbox.knative.revision import revision_status
from rollout.sandbox.knative.route import (
    configuration_view,
    labeled_revision,
    revision_view,
    route_status,
    routing_references,
)
from rollout.sandbox.knative.service import (
    desired_configuration,
    desired_route,
    meta,
    needs_update,
    route_may_update,
    service_status,
)

Obj = dict[str, Any]
Kind = Literal["services", "configurations", "routes", "revisions"]
KINDS: tuple[Kind, ...] = ("services", "configurations", "routes", "revisions")


@dataclass(frozen=True)
class Create:
    kind: Kind
    obj: Obj


@dataclass(frozen=True)
class Update:
    """Replace the object (`status=False`: metadata and spec, with resourceVersion as precondition) or
    only its status (`status=True`)."""

    kind: Kind
    obj: Obj
    status: bool = False


@dataclass(frozen=True)
class Delete:
    kind: Kind
    namespace: str
    name: str


Write = Create | Update | Delete


@dataclass(frozen=True)
class Settings:
    domain: str = "example.com"
    gc: GcSettings = field(default_factory=GcSettings)


@dataclass
class Snapshot:
    """The Knative objects of the store, by kind, then by (namespace, name)."""

    objects: dict[Kind, dict[tuple[str, str], Obj]]

    @classmethod
    def of(cls, listing: Mapping[Kind, Sequence[Obj]]) -> Snapshot:
        return cls(
            {
                kind: {
                    (str(meta(o).get("namespace")), str(meta(o).get("name"))): o
                    for o in listing.get(kind, ())
                }
                for kind in KINDS
            }
        )

    def by_namespace(self, kind: Kind) -> dict[str, dict[str, Obj]]:
        grouped: dict[str, dict[str, Obj]] = defaultdict(dict)
        for (namespace, name), obj in self.objects[kind].items():
            grouped[namespace][name] = obj
        return grouped


def _owner_uid(obj: Mapping[str, Any], kind: str) -> str | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _with_status(obj: Obj, status: Obj) -> Update | None:
    if obj.get("status") == status:
        return None
    updated = copy.deepcopy(obj)
    updated["status"] = status
    updated["metadata"].pop("resourceVersion", None)
    return Update(_kind_of(obj), updated, status=True)


def _kind_of(obj: Mapping[str, Any]) -> Kind:
    return {
        "Service": "services",
        "Configuration": "configurations",
        "Route": "routes",
        "Revision": "revisions",
    }[str(obj.get("kind"))]  # type: ignore[return-value]


def plan(snapshot: Snapshot, fleet: Fleet, now: float, settings: Settings) -> list[Write]:
    writes: list[Write] = []
    writes += _garbage_of_deleted_owners(snapshot)
    writes += _services(snapshot, now)
    writes += _configurations(snapshot, now)
    writes += _revisions(snapshot, fleet, now)
    writes += _routes(snapshot, now, settings)
    writes += _routing_labels(snapshot, now)
    writes += _collect(snapshot, now, settings)
    return writes


def _garbage_of_deleted_owners(snapshot: Snapshot) -> list[Write]:
    """Kubernetes' garbage collector: children whose controlling owner is gone are deleted."""
    writes: list[Write] = []
    owners: list[tuple[Kind, Kind, str]] = [
        ("configurations", "services", "Service"),
        ("routes", "services", "Service"),
        ("revisions", "configurations", "Configuration"),
    ]
    for child_kind, owner_kind, owner_name in owners:
        live = {str(meta(o).get("uid")) for o in snapshot.objects[owner_kind].values()}
        for (namespace, name), child in snapshot.objects[child_kind].items():
            uid = _owner_uid(child, owner_name)
            if uid is not None and uid not in live:
                writes.append(Delete(child_kind, namespace, name))
    return writes


def _services(snapshot: Snapshot, now: float) -> list[Write]:
    writes: list[Write] = []
    for key, service in snapshot.objects["services"].items():
        if meta(service).get("deletionTimestamp"):
            continue
        configuration = snapshot.objects["configurations"].get(key)
        route = snapshot.objects["routes"].get(key)
        wanted_config = desired_configuration(service)
        if configuration is None:
            writes.append(Create("configurations", wanted_config))
        elif _owner_uid(configuration, "Service") == meta(service).get("uid") and needs_update(
            configuration, wanted_config
        ):
            writes.append(Update("configurations", _replace_spec(configuration, wanted_config)))
        if route_may_update(service, configuration):
            wanted_route = desired_route(service)
            if route is None:
                writes.append(Create("routes", wanted_route))
            elif _owner_uid(route, "Service") == meta(service).get("uid") and needs_update(
                route, wanted_route
            ):
                writes.append(Update("routes", _replace_spec(route, wanted_route)))
        update = _with_status(service, service_status(service, configuration, route, now))
        if update is not None:
            writes.append(update)
    return writes


def _replace_spec(current: Obj, desired: Obj) -> Obj:
    updated = copy.deepcopy(current)
    updated["spec"] = copy.deepcopy(desired["spec"])
    updated["metadata"]["labels"] = desired["metadata"]["labels"]
    annotations = dict(desired["metadata"]["annotations"])
    routes = (meta(current).get("annotations") or {}).get(names.ROUTES_ANNOTATION)
    if routes:  # written by the route labeler, not by the Service reconciler
        annotations[names.ROUTES_ANNOTATION] = routes
    updated["metadata"]["annotations"] = annotations
    updated.pop("status", None)
    return updated


def _revisions_by_configuration(snapshot: Snapshot) -> dict[tuple[str, str], list[Obj]]:
    grouped: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for (namespace, _), revision in snapshot.objects["revisions"].items():
        config_name = (meta(revision).get("labels") or {}).get(names.CONFIGURATION_LABEL)
        if config_name:
            grouped[(namespace, str(config_name))].append(revision)
    return grouped


def _configurations(snapshot: Snapshot, now: float) -> list[Write]:
    writes: list[Write] = []
    revisions_by_config = _revisions_by_configuration(snapshot)
    for key, configuration in snapshot.objects["configurations"].items():
        if meta(configuration).get("deletionTimestamp"):
            continue
        own = revisions_by_config.get(key, [])
        if current_revision(configuration, own) is None:
            name_taken = (key[0], revision_name(configuration)) in snapshot.objects["revisions"]
            if not name_taken:
                writes.append(Create("revisions", desired_revision(configuration, now)))
        update = _with_status(configuration, configuration_status(configuration, own, now))
        if update is not None:
            writes.append(update)
    return writes


def _revisions(snapshot: Snapshot, fleet: Fleet, now: float) -> list[Write]:
    writes: list[Write] = []
    for (namespace, name), revision in snapshot.objects["revisions"].items():
        update = _with_status(revision, revision_status(revision, fleet.get(namespace, name), now))
        if update is not None:
            writes.append(update)
    return writes


def _routes(snapshot: Snapshot, now: float, settings: Settings) -> list[Write]:
    writes: list[Write] = []
    revisions = {
        ns: {name: revision_view(obj) for name, obj in objs.items()}
        for ns, objs in snapshot.by_namespace("revisions").items()
    }
    configurations = {
        ns: {name: configuration_view(obj) for name, obj in objs.items()}
        for ns, objs in snapshot.by_namespace("configurations").items()
    }
    for (namespace, _), route in snapshot.objects["routes"].items():
        status = route_status(
            route,
            revisions.get(namespace, {}),
            configurations.get(namespace, {}),
            domain=settings.domain,
            now=now,
        )
        update = _with_status(route, status)
        if update is not None:
            writes.append(update)
    return writes


def _routing_labels(snapshot: Snapshot, now: float) -> list[Write]:
    writes: list[Write] = []
    routes = snapshot.by_namespace("routes")
    configurations = snapshot.by_namespace("configurations")
    for namespace in set(snapshot.by_namespace("revisions")) | set(configurations):
        refs = routing_references(routes.get(namespace, {}).values(), configurations.get(namespace, {}))
        for name, revision in snapshot.by_namespace("revisions").get(namespace, {}).items():
            labeled = labeled_revision(revision, refs.revisions.get(name, ()), now)
            if labeled is not None:
                labeled.pop("status", None)
                writes.append(Update("revisions", labeled))
        for name, configuration in configurations.get(namespace, {}).items():
            wanted = ",".join(refs.configurations.get(name, ()))
            annotations = dict(meta(configuration).get("annotations") or {})
            if annotations.get(names.ROUTES_ANNOTATION, "") == wanted:
                continue
            if wanted:
                annotations[names.ROUTES_ANNOTATION] = wanted
            else:
                annotations.pop(names.ROUTES_ANNOTATION, None)
            updated = copy.deepcopy(configuration)
            updated["metadata"]["annotations"] = annotations
            updated.pop("status", None)
            writes.append(Update("configurations", updated))
    return writes


def _collect(snapshot: Snapshot, now: float, settings: Settings) -> list[Write]:
    writes: list[Write] = []
    revisions_by_config = _revisions_by_configuration(snapshot)
    for key, configuration in snapshot.objects["configurations"].items():
        for name in revisions_to_collect(configuration, revisions_by_config.get(key, []), settings.gc, now):
            writes.append(Delete("revisions", key[0], name))
    return writes
