"""The Knative simulator's view of the store: the Knative objects by kind and key, plus the secondary indexes
its reconcilers need (a Configuration's revisions, which Routes reference a revision or a configuration,
which configurations have a revision as latest ready, each owner's children), kept up to date one change at a
time. Pure data: no I/O, no clock.

`change()` returns the objects whose reconcile may now want a different write — the changed object and its
dependents — so the simulator reconciles those instead of everything (a write costs O(its neighbours), not
O(all objects)).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rollout_lab.sandbox.knative import names
from rollout_lab.sandbox.store_api import Obj

Kind = Literal["services", "configurations", "routes", "revisions"]
KINDS: tuple[Kind, ...] = ("services", "configurations", "routes", "revisions")
Key = tuple[str, str]  # (namespace, name)
Ref = tuple[Kind, str, str]  # (kind, namespace, name)
OWNER_KINDS: Mapping[Kind, tuple[Kind, str]] = {
    "configurations": ("services", "Service"),
    "routes": ("services", "Service"),
    "revisions": ("configurations", "Configuration"),
}


def meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def key_of(obj: Mapping[str, Any]) -> Key:
    m = meta(obj)
    return (str(m.get("namespace")), str(m.get("name")))


def controller_owner(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return dict(ref)
    return None


def configuration_of(revision: Mapping[str, Any]) -> str:
    return str((meta(revision).get("labels") or {}).get(names.CONFIGURATION_LABEL) or "")


def latest_ready(configuration: Mapping[str, Any] | None) -> str:
    return str(((configuration or {}).get("status") or {}).get("latestReadyRevisionName") or "")


@dataclass(frozen=True)
class TrafficRefs:
    """What a Route's spec.traffic names."""

    revisions: frozenset[str] = frozenset()
    configurations: frozenset[str] = frozenset()

    @classmethod
    def of(cls, route: Mapping[str, Any] | None) -> TrafficRefs:
        revisions: set[str] = set()
        configurations: set[str] = set()
        for entry in ((route or {}).get("spec") or {}).get("traffic") or []:
            if entry.get("revisionName"):
                revisions.add(str(entry["revisionName"]))
            elif entry.get("configurationName"):
                configurations.add(str(entry["configurationName"]))
        return cls(frozenset(revisions), frozenset(configurations))


def _add(index: dict[Key, set[str]], key: Key, value: str) -> None:
    index.setdefault(key, set()).add(value)


def _discard(index: dict[Key, set[str]], key: Key, value: str) -> None:
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]


@dataclass
class KnativeIndex:
    """See the module docstring. Objects are the store's own (read-only)."""

    objects: dict[Kind, dict[Key, Obj]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    revisions_of: dict[Key, set[str]] = field(default_factory=dict)  # (ns, configuration) -> revisions
    routes_to_revision: dict[Key, set[str]] = field(default_factory=dict)  # (ns, revision) -> routes
    routes_to_configuration: dict[Key, set[str]] = field(default_factory=dict)  # (ns, config) -> routes
    ready_in: dict[Key, set[str]] = field(default_factory=dict)  # (ns, revision) -> configs it is latest of
    uids: dict[str, Ref] = field(default_factory=dict)
    children: dict[str, set[Ref]] = field(default_factory=dict)  # owner uid -> controlled objects

    @classmethod
    def of(cls, listing: Mapping[Kind, Iterable[Obj]]) -> KnativeIndex:
        index = cls()
        for kind in KINDS:
            for obj in listing.get(kind, ()):
                index.change(kind, obj, None)
        return index

    # ------------------------------------------------------------------ reads

    def get(self, kind: Kind, key: Key) -> Obj | None:
        return self.objects[kind].get(key)

    def refs(self, kind: Kind) -> Iterator[Ref]:
        for namespace, name in self.objects[kind]:
            yield (kind, namespace, name)

    def revisions_of_configuration(self, key: Key) -> list[Obj]:
        """The revisions labelled with this configuration, by name."""
        found = []
        for name in sorted(self.revisions_of.get(key, ())):
            revision = self.objects["revisions"].get((key[0], name))
            if revision is not None:
                found.append(revision)
        return found

    def routes_referencing_revision(self, key: Key) -> tuple[str, ...]:
        """Routes naming the revision in spec.traffic, directly or through a configuration whose latest ready
        revision it is (as Knative's route labeler counts them), sorted."""
        namespace = key[0]
        routes = set(self.routes_to_revision.get(key, ()))
        for config in self.ready_in.get(key, ()):
            routes |= self.routes_to_configuration.get((namespace, config), set())
        return tuple(sorted(routes))

    def routes_referencing_configuration(self, key: Key) -> tuple[str, ...]:
        return tuple(sorted(self.routes_to_configuration.get(key, ())))

    def alive(self, uid: str, kind: Kind) -> bool:
        ref = self.uids.get(uid)
        return ref is not None and ref[0] == kind

    # ------------------------------------------------------------------ writes

    def change(self, kind: Kind, obj: Obj | None, old: Obj | None) -> set[Ref]:
        """Record that the object `old` became `obj` (None: created / deleted). Returns the objects to
        reconcile because of it."""
        current = obj if obj is not None else old
        assert current is not None
        key = key_of(current)
        namespace, name = key
        if old is not None:
            self._unindex(kind, old)
        if obj is None:
            self.objects[kind].pop(key, None)
        else:
            self.objects[kind][key] = obj
            self._index(kind, obj)
        dirty: set[Ref] = {(kind, namespace, name)}
        if obj is None or old is None or meta(obj).get("uid") != meta(old).get("uid"):
            for version in (obj, old):
                dirty |= self.children.get(str(meta(version).get("uid")), set())
        if kind == "services":
            return dirty
        # a Service's status follows its Configuration and Route of the same name
        dirty.add(("services", namespace, name))
        if kind == "configurations":
            for route in self.routes_to_configuration.get(key, ()):
                dirty.add(("routes", namespace, route))
            for version in (obj, old):
                revision = latest_ready(version)
                if revision:
                    dirty.add(("revisions", namespace, revision))
        elif kind == "routes":
            for version in (obj, old):
                refs = TrafficRefs.of(version)
                for revision in refs.revisions:
                    dirty.add(("revisions", namespace, revision))
                for config in refs.configurations:
                    dirty.add(("configurations", namespace, config))
                    revision = latest_ready(self.objects["configurations"].get((namespace, config)))
                    if revision:
                        dirty.add(("revisions", namespace, revision))
        else:  # revisions
            for version in (obj, old):
                config = configuration_of(version) if version is not None else ""
                if config:
                    dirty.add(("configurations", namespace, config))
                    for route in self.routes_to_configuration.get((namespace, config), ()):
                        dirty.add(("routes", namespace, route))
                owner = controller_owner(version or {}, "Configuration")
                if owner is not None:
                    dirty.add(("configurations", namespace, str(owner.get("name"))))
            for route in self.routes_to_revision.get(key, ()):
                dirty.add(("routes", namespace, route))
            for config in self.ready_in.get(key, ()):
                for route in self.routes_to_configuration.get((namespace, config), ()):
                    dirty.add(("routes", namespace, route))
        return dirty

    def _index(self, kind: Kind, obj: Obj) -> None:
        m = meta(obj)
        namespace, name = key_of(obj)
        ref: Ref = (kind, namespace, name)
        self.uids[str(m.get("uid"))] = ref
        if kind in OWNER_KINDS:
            owner = controller_owner(obj, OWNER_KINDS[kind][1])
            if owner is not None:
                self.children.setdefault(str(owner.get("uid")), set()).add(ref)
        if kind == "revisions":
            config = configuration_of(obj)
            if config:
                _add(self.revisions_of, (namespace, config), name)
        elif kind == "routes":
            refs = TrafficRefs.of(obj)
            for revision in refs.revisions:
                _add(self.routes_to_revision, (namespace, revision), name)
            for config in refs.configurations:
                _add(self.routes_to_configuration, (namespace, config), name)
        elif kind == "configurations":
            revision = latest_ready(obj)
            if revision:
                _add(self.ready_in, (namespace, revision), name)

    def _unindex(self, kind: Kind, obj: Obj) -> None:
        m = meta(obj)
        namespace, name = key_of(obj)
        ref: Ref = (kind, namespace, name)
        uid = str(m.get("uid"))
        if self.uids.get(uid) == ref:
            del self.uids[uid]
        if kind in OWNER_KINDS:
            owner = controller_owner(obj, OWNER_KINDS[kind][1])
            if owner is not None:
                owner_uid = str(owner.get("uid"))
                kids = self.children.get(owner_uid)
                if kids is not None:
                    kids.discard(ref)
                    if not kids:
                        del self.children[owner_uid]
        if kind == "revisions":
            config = configuration_of(obj)
            if config:
                _discard(self.revisions_of, (namespace, config), name)
        elif kind == "routes":
            refs = TrafficRefs.of(obj)
            for revision in refs.revisions:
                _discard(self.routes_to_revision, (namespace, revision), name)
            for config in refs.configurations:
                _discard(self.routes_to_configuration, (namespace, config), name)
        elif kind == "configurations":
            revision = latest_ready(obj)
            if revision:
                _discard(self.ready_in, (namespace, revision), name)
