"""The Knative simulator's reconcilers, as pure functions: the Knative objects (a `KnativeIndex`, plus the
simulated data plane, read-only) and the objects to reconcile in, the writes Knative Serving would make out.

The async loop (`controller.py`) applies the writes and reconciles what they touched until nothing is left.
Each reconcile is level-based: it looks only at the current objects, so it converges from any state (and
after any crash); `plan` over every object is a full resync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rollout_lab.sandbox.knative import names
from rollout_lab.sandbox.knative.configuration import (
    configuration_status,
    current_revision,
    desired_revision,
    revision_name,
)
from rollout_lab.sandbox.knative.fleet import Fleet
from rollout_lab.sandbox.knative.gc import GcSettings, revisions_to_collect
from rollout_lab.sandbox.knative.index import (
    KINDS,
    OWNER_KINDS,
    Key,
    Kind,
    KnativeIndex,
    Ref,
    TrafficRefs,
    controller_owner,
    latest_ready,
)
from rollout_lab.sandbox.knative.revision import revision_status
from rollout_lab.sandbox.knative.route import (
    configuration_view,
    labeled_revision,
    revision_view,
    route_status,
)
from rollout_lab.sandbox.knative.service import (
    desired_configuration,
    desired_route,
    meta,
    needs_update,
    route_may_update,
    service_status,
    update_request,
)
from rollout_lab.sandbox.store_api import Obj

__all__ = ["KINDS", "Create", "Delete", "Kind", "Settings", "Update", "Write", "plan"]


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


def _with_status(kind: Kind, obj: Obj, status: Obj) -> Update | None:
    if obj.get("status") == status:
        return None
    # the store takes only .status from a status write (and copies it): no deep copy of the rest
    metadata = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return Update(kind, {**obj, "metadata": metadata, "status": status}, status=True)


def plan(
    index: KnativeIndex, refs: Iterable[Ref], fleet: Fleet, now: float, settings: Settings
) -> list[Write]:
    """The writes that reconcile `refs` (objects already gone are skipped): deletions of orphans first, then
    metadata/spec writes, then status writes (status writes carry no resourceVersion)."""
    ordered = sorted(set(refs), key=lambda ref: (KINDS.index(ref[0]), ref[1], ref[2]))
    deletes: list[Write] = []
    specs: list[Write] = []
    statuses: list[Write] = []
    for kind, namespace, name in ordered:
        key = (namespace, name)
        obj = index.get(kind, key)
        if obj is None:
            continue
        if _orphaned(index, kind, obj):
            deletes.append(Delete(kind, namespace, name))
            continue
        if kind == "services":
            writes = _service(index, key, obj, now)
        elif kind == "configurations":
            writes = _configuration(index, key, obj, now, settings)
        elif kind == "revisions":
            writes = _revision(index, key, obj, fleet, now)
        else:
            writes = _route(index, key, obj, now, settings)
        for write in writes:
            if isinstance(write, Delete):
                deletes.append(write)
            elif isinstance(write, Update) and write.status:
                statuses.append(write)
            else:
                specs.append(write)
    return deletes + specs + statuses


def _orphaned(index: KnativeIndex, kind: Kind, obj: Obj) -> bool:
    """Kubernetes' garbage collector: a child whose controlling owner is gone is deleted."""
    if kind not in OWNER_KINDS:
        return False
    owner_kind, owner_name = OWNER_KINDS[kind]
    owner = controller_owner(obj, owner_name)
    return owner is not None and not index.alive(str(owner.get("uid")), owner_kind)


def _owned_by(child: Obj, owner: Obj) -> bool:
    ref = controller_owner(child, "Service")
    return ref is not None and ref.get("uid") == meta(owner).get("uid")


def _service(index: KnativeIndex, key: Key, service: Obj, now: float) -> list[Write]:
    if meta(service).get("deletionTimestamp"):
        return []
    configuration = index.get("configurations", key)
    route = index.get("routes", key)
    writes: list[Write] = []
    wanted_config = desired_configuration(service)
    # Knative's Service reconciler judges its children by the objects its own updates returned: a child
    # whose spec it has just rewritten has a newer generation than its status observed, so the one status
    # write of this reconcile already says "OutOfDate" (not a second write after the child's change event).
    config_seen, route_seen = configuration, route
    if configuration is None:
        writes.append(Create("configurations", wanted_config))
    elif _owned_by(configuration, service) and needs_update(configuration, wanted_config):
        writes.append(Update("configurations", _replace_spec(configuration, wanted_config)))
        config_seen = _as_written(configuration, wanted_config)
    if route_may_update(service, configuration):
        wanted_route = desired_route(service)
        if route is None:
            writes.append(Create("routes", wanted_route))
        elif _owned_by(route, service) and needs_update(route, wanted_route):
            writes.append(Update("routes", _replace_spec(route, wanted_route)))
            route_seen = _as_written(route, wanted_route)
    update = _with_status("services", service, service_status(service, config_seen, route_seen, now))
    if update is not None:
        writes.append(update)
    return writes


def _as_written(current: Obj, desired: Obj) -> Obj:
    """`current` as the API server answers the update of its spec to `desired`'s: a changed spec bumps
    metadata.generation (the status is the old one). Only what the status computation reads is built."""
    if current.get("spec") == desired.get("spec"):
        return current
    m = meta(current)
    return {**current, "metadata": {**m, "generation": int(m.get("generation") or 0) + 1}}


def _replace_spec(current: Obj, desired: Obj) -> Obj:
    annotations = dict(desired["metadata"]["annotations"])
    routes = (meta(current).get("annotations") or {}).get(names.ROUTES_ANNOTATION)
    if routes:  # written by the route labeler, not by the Service reconciler
        annotations[names.ROUTES_ANNOTATION] = routes
    updated = update_request(current, labels=desired["metadata"]["labels"], annotations=annotations)
    updated["spec"] = desired["spec"]
    return updated


def _configuration(
    index: KnativeIndex, key: Key, configuration: Obj, now: float, settings: Settings
) -> list[Write]:
    writes: list[Write] = []
    own = index.revisions_of_configuration(key)
    if not meta(configuration).get("deletionTimestamp"):
        name_taken = index.get("revisions", (key[0], revision_name(configuration))) is not None
        if current_revision(configuration, own) is None and not name_taken:
            writes.append(Create("revisions", desired_revision(configuration, now)))
        update = _with_status("configurations", configuration, configuration_status(configuration, own, now))
        if update is not None:
            writes.append(update)
    labeled = _routes_annotation(configuration, index.routes_referencing_configuration(key))
    if labeled is not None:
        writes.append(Update("configurations", labeled))
    for name in revisions_to_collect(configuration, own, settings.gc, now):
        writes.append(Delete("revisions", key[0], name))
    return writes


def _routes_annotation(configuration: Obj, routes: tuple[str, ...]) -> Obj | None:
    """The route labeler's `serving.knative.dev/routes` annotation on a configuration (None: unchanged)."""
    wanted = ",".join(routes)
    annotations = dict(meta(configuration).get("annotations") or {})
    if annotations.get(names.ROUTES_ANNOTATION, "") == wanted:
        return None
    if wanted:
        annotations[names.ROUTES_ANNOTATION] = wanted
    else:
        annotations.pop(names.ROUTES_ANNOTATION, None)
    return update_request(configuration, annotations=annotations)


def _revision(index: KnativeIndex, key: Key, revision: Obj, fleet: Fleet, now: float) -> list[Write]:
    writes: list[Write] = []
    labeled = labeled_revision(revision, index.routes_referencing_revision(key), now)
    if labeled is not None:
        writes.append(Update("revisions", labeled))
    update = _with_status("revisions", revision, revision_status(revision, fleet.get(*key), now))
    if update is not None:
        writes.append(update)
    return writes


def _route(index: KnativeIndex, key: Key, route: Obj, now: float, settings: Settings) -> list[Write]:
    namespace = key[0]
    refs = TrafficRefs.of(route)
    revision_names = set(refs.revisions)
    configurations = {}
    for name in refs.configurations:
        config = index.get("configurations", (namespace, name))
        if config is not None:
            configurations[name] = configuration_view(config)
            if latest_ready(config):
                revision_names.add(latest_ready(config))
    revisions = {}
    for name in revision_names:
        revision = index.get("revisions", (namespace, name))
        if revision is not None:
            revisions[name] = revision_view(revision)
    status = route_status(route, revisions, configurations, domain=settings.domain, now=now)
    update = _with_status("routes", route, status)
    return [update] if update is not None else []


def all_refs(index: KnativeIndex) -> list[Ref]:
    return [ref for kind in KINDS for ref in index.refs(kind)]
