"""The informers the controller runs, their indexes, and which work-queue keys each change wakes up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rollout.api.common import POLICY_LABEL
from rollout.api.rollout import TERMINAL_PHASES, Rollout
from rollout.controller.expectations import Expectations
from rollout.controller.parsed import RolloutParser
from rollout.controller.rollouts import TARGET_KIND_LABEL, TARGET_LABEL
from rollout.controller.slim import slimmer
from rollout.controller.views import (
    CONFIGURATION_LABEL,
    GENERATION_LABEL,
    KNATIVE_LABEL_PREFIX,
    SERVICE_LABEL,
    ObjectKey,
    meta,
    revision_short_of_pods,
)
from rollout.kube.client import KubeClient, Obj
from rollout.kube.informer import Informer, InformerSettings
from rollout.kube.resources import (
    CLUSTER_SOURCES,
    POLICIES,
    REVISIONS,
    ROLLOUTS,
    ROUTES,
    SERVICES,
    Resource,
)

BY_POLICY = "policy"
BY_SERVICE = "service"
BY_CONFIGURATION = "configuration"
BY_TARGET = "target"
BY_REVISION = "revision"


def _ns(obj: Obj) -> str:
    return str(meta(obj).get("namespace") or "")


def _labels(obj: Obj) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


def policy_index(obj: Obj) -> list[str]:
    name = _labels(obj).get(POLICY_LABEL)
    return [f"{_ns(obj)}/{name}"] if name else []


def revision_service_index(obj: Obj) -> list[str]:
    name = _labels(obj).get(SERVICE_LABEL)
    return [f"{_ns(obj)}/{name}"] if name else []


def revision_configuration_index(obj: Obj) -> list[str]:
    name = _labels(obj).get(CONFIGURATION_LABEL)
    return [f"{_ns(obj)}/{name}"] if name else []


def route_configuration_index(obj: Obj) -> list[str]:
    spec = obj.get("spec") or {}
    names = {str(e.get("configurationName")) for e in spec.get("traffic") or () if e.get("configurationName")}
    return [f"{_ns(obj)}/{n}" for n in sorted(names)]


def route_revision_index(obj: Obj) -> list[str]:
    spec = obj.get("spec") or {}
    names = {str(e.get("revisionName")) for e in spec.get("traffic") or () if e.get("revisionName")}
    return [f"{_ns(obj)}/{n}" for n in sorted(names)]


def rollout_target_index(obj: Obj) -> list[str]:
    labels = _labels(obj)
    target = labels.get(TARGET_LABEL)
    return [f"{_ns(obj)}/{labels.get(TARGET_KIND_LABEL, 'Service')}/{target}"] if target else []


@dataclass
class Caches:
    services: Informer
    routes: Informer
    revisions: Informer
    rollouts: Informer
    policies: Informer
    cluster_sources: Informer | None  # ClusterMetricSources (cluster-scoped, the admins'); None: not read
    parser: RolloutParser = field(default_factory=RolloutParser)

    @classmethod
    def create(
        cls,
        client: KubeClient,
        namespaces: Sequence[str] | None,
        settings: InformerSettings | None = None,
        cluster_sources: bool = True,
    ) -> Caches:
        def informer(resource: Resource, selector: str | None = None) -> Informer:
            return Informer(
                client,
                resource,
                namespaces,
                label_selector=selector,
                settings=settings,
                transform=slimmer(resource.kind),
            )

        caches = cls(
            services=informer(SERVICES, POLICY_LABEL),
            # a Service's own Route carries the Service's labels: only standalone Routes are targets
            routes=informer(ROUTES, f"{POLICY_LABEL},!{SERVICE_LABEL}"),
            revisions=informer(REVISIONS),
            rollouts=informer(ROLLOUTS),
            policies=informer(POLICIES),
            cluster_sources=Informer(client, CLUSTER_SOURCES, None, settings=settings)
            if cluster_sources
            else None,
        )
        caches.services.add_index(BY_POLICY, policy_index)
        caches.routes.add_index(BY_POLICY, policy_index)
        caches.routes.add_index(BY_CONFIGURATION, route_configuration_index)
        caches.routes.add_index(BY_REVISION, route_revision_index)
        caches.revisions.add_index(BY_SERVICE, revision_service_index)
        caches.revisions.add_index(BY_CONFIGURATION, revision_configuration_index)
        caches.rollouts.add_index(BY_TARGET, rollout_target_index)
        return caches

    @property
    def all(self) -> tuple[Informer, ...]:
        namespaced = self.namespaced
        return namespaced if self.cluster_sources is None else (*namespaced, self.cluster_sources)

    @property
    def namespaced(self) -> tuple[Informer, ...]:
        return (self.services, self.routes, self.revisions, self.rollouts, self.policies)

    def keep_only(self, namespaces: Callable[[str], bool]) -> None:
        """Cache only the namespaces `namespaces` chooses (a shard's replica: those of the shards it holds)."""
        for informer in self.namespaced:
            informer.keep = namespaces

    async def adopt(self, namespaces: Callable[[str], bool]) -> None:
        """Fill the caches with the namespaces just kept (see Informer.adopt)."""
        await asyncio.gather(*(i.adopt(namespaces) for i in self.namespaced))

    def forget(self, namespaces: Callable[[str], bool]) -> None:
        for informer in self.namespaced:
            informer.forget(namespaces)

    @property
    def synced(self) -> bool:
        return all(i.synced for i in self.all)

    def cluster_source(self, name: str) -> Obj | None:
        """A ClusterMetricSource by name; None when missing or when this controller does not read them."""
        return None if self.cluster_sources is None else self.cluster_sources.get("", name)

    def target(self, key: ObjectKey) -> Obj | None:
        informer = self.services if key.kind == "Service" else self.routes
        return informer.get(key.namespace, key.name)

    def targets_of_policy(self, namespace: str, policy: str) -> list[Obj]:
        value = f"{namespace}/{policy}"
        return [*self.services.by_index(BY_POLICY, value), *self.routes.by_index(BY_POLICY, value)]

    def rollouts_of(self, key: ObjectKey) -> list[Obj]:
        return self.rollouts.by_index(BY_TARGET, f"{key.namespace}/{key.kind}/{key.name}")

    def has_active_rollout(self, key: ObjectKey) -> bool:
        return any(map(_running, self.rollouts_of(key)))

    def parsed_rollouts(self) -> list[Rollout]:
        out = []
        for obj in self.rollouts.items():
            parsed, _ = self.parser.parse(obj)
            if parsed is not None:
                out.append(parsed)
        return out

    def all_keys(self) -> list[ObjectKey]:
        """Every target and policy; and the targets of running rollouts, which may have left the informers
        (their label removed while no controller ran)."""
        keys = [target_key(o) for o in (*self.services.items(), *self.routes.items())]
        known = set(keys)
        for o in self.rollouts.items():
            key = _rollout_target(o)
            if key is not None and _running(o) and key not in known:
                known.add(key)
                keys.append(key)
        keys += [ObjectKey("RolloutPolicy", _ns(o), str(meta(o).get("name"))) for o in self.policies.items()]
        return keys

    def wire(self, enqueue: Callable[[ObjectKey], None], expectations: Expectations | None = None) -> None:
        """Route every change to the keys it concerns. With `expectations`, a target's MODIFIED event and a
        Rollout's ADDED event are first asked about there: the echo of our own write or create queues nothing
        (rollout.controller.expectations has the rules)."""

        def target(kind: str, old: Obj | None, new: Obj) -> None:
            def deliver() -> None:
                _target_changed(enqueue, kind, old, new)

            if kind != "MODIFIED" or expectations is None:
                deliver()
                return
            key = target_key(new)
            expectations.observe(key, key.kind, new, deliver, created=False)

        self.services.add_handler(target)
        self.routes.add_handler(target)
        self.revisions.add_handler(lambda kind, old, new: self._revision_changed(enqueue, kind, old, new))

        def rollout(kind: str, old: Obj | None, new: Obj) -> None:
            def deliver() -> None:
                _rollout_changed(enqueue, kind, old, new)

            target_of = _rollout_target(new)
            if kind != "ADDED" or expectations is None or target_of is None:
                deliver()
                return
            expectations.observe(target_of, "Rollout", new, deliver, created=True)

        self.rollouts.add_handler(rollout)
        self.policies.add_handler(lambda kind, old, new: self._policy_changed(enqueue, kind, old, new))

    def _revision_changed(
        self, enqueue: Callable[[ObjectKey], None], kind: str, old: Obj | None, rev: Obj
    ) -> None:
        if kind == "MODIFIED" and old is not None and revision_projection(old) == revision_projection(rev):
            return
        ns = _ns(rev)
        service = _labels(rev).get(SERVICE_LABEL)
        if service and self.services.get(ns, service) is not None:
            enqueue(ObjectKey("Service", ns, service))
        config = _labels(rev).get(CONFIGURATION_LABEL)
        routes = self.routes.by_index(BY_REVISION, f"{ns}/{meta(rev).get('name')}")
        if config:
            routes += self.routes.by_index(BY_CONFIGURATION, f"{ns}/{config}")
        for route in routes:
            enqueue(target_key(route))

    def _policy_changed(
        self, enqueue: Callable[[ObjectKey], None], kind: str, old: Obj | None, new: Obj
    ) -> None:
        ns, name = _ns(new), str(meta(new).get("name"))
        enqueue(ObjectKey("RolloutPolicy", ns, name))
        if (
            kind == "MODIFIED"
            and old is not None
            and meta(old).get("generation") == meta(new).get("generation")
        ):
            return  # a status write (ours): the targets do not care
        for target in self.targets_of_policy(ns, name):
            enqueue(target_key(target))


_TERMINAL = frozenset(p.value for p in TERMINAL_PHASES)


def _running(rollout: Obj) -> bool:
    return ((rollout.get("status") or {}).get("phase") or "Pending") not in _TERMINAL


def target_key(obj: Obj) -> ObjectKey:
    return ObjectKey(str(obj.get("kind") or "Service"), _ns(obj), str(meta(obj).get("name")))


def _traffic(obj: Obj | None) -> object:
    return ((obj or {}).get("spec") or {}).get("traffic")


def _conditions(obj: Obj, types: tuple[str, ...]) -> list[tuple[object, ...]]:
    conds = (obj.get("status") or {}).get("conditions") or ()
    return sorted(
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
        for c in conds
        if c.get("type") in types
    )


_TARGET_CONDITIONS = ("Ready", "RoutesReady", "ConfigurationsReady")


class TargetProjection(NamedTuple):
    """What a reconcile of a target reads from it (Knative rewrites a Service's status often, e.g. for
    replica counts: changes outside this are not worth a reconcile)."""

    # what users and the controller wrote (generation, labels, spec.traffic), and which revisions Knative
    # has created and made Ready
    spec_side: tuple[object, ...]
    # Knative's progress report: status.traffic, observedGeneration, the Ready conditions
    traffic: object
    observed_generation: object
    conditions: list[tuple[object, ...]]


def target_projection(obj: Obj) -> TargetProjection:
    m, status = meta(obj), obj.get("status") or {}
    return TargetProjection(
        (
            m.get("generation"),
            m.get("labels"),
            _traffic(obj),
            status.get("latestCreatedRevisionName"),
            status.get("latestReadyRevisionName"),
        ),
        status.get("traffic"),
        status.get("observedGeneration"),
        _conditions(obj, _TARGET_CONDITIONS),
    )


def revision_projection(obj: Obj) -> tuple[object, ...]:
    """What a reconcile reads of a revision. Knative's own bookkeeping labels (routingState, which flips
    as routes start and stop naming the revision) are left out: nothing here reads them. Of its pods, only
    whether it is short of them."""
    labels = {
        k: v
        for k, v in (meta(obj).get("labels") or {}).items()
        if not str(k).startswith(KNATIVE_LABEL_PREFIX) or k in _READ_KNATIVE_LABELS
    }
    # of its pods, whether it is short of them (rollout.engine.capacity); the counts change with every
    # scaling step of every revision and are not worth a reconcile
    return (labels, obj.get("spec"), _conditions(obj, ("Ready",)), revision_short_of_pods(obj))


_READ_KNATIVE_LABELS = frozenset({SERVICE_LABEL, CONFIGURATION_LABEL, GENERATION_LABEL})


def _failing(p: TargetProjection) -> bool:
    return any(c[1] == "False" for c in p.conditions)


def settling(old: TargetProjection, new: TargetProjection) -> bool:
    """Knative is still working on the target: Ready is Unknown (not False) and it was not failing before,
    and nothing else a reconcile reads changed (its traffic block, labels, generation, latest revisions).
    A reconcile would find nothing to decide (traffic counts as applied only once Ready is True, and a
    failure shows as False), and the rollout's timers (bake, deadlines) wake it regardless: so only the
    change that settles it, to True or False, is worth a reconcile. Knative reports two or three such
    steps (OutOfDate, then the Route's own progress) for every traffic write."""
    ready = [c[1] for c in new.conditions if c[0] == "Ready"]
    return ready == ["Unknown"] and not _failing(new) and not _failing(old) and old.spec_side == new.spec_side


def _target_changed(enqueue: Callable[[ObjectKey], None], kind: str, old: Obj | None, new: Obj) -> None:
    """A target's own reconcile, and its policy's (whose status lists unmanageable targets) when the
    target joined, left, or its traffic block changed."""
    if kind == "MODIFIED" and old is not None:
        before, after = target_projection(old), target_projection(new)
        if before == after or settling(before, after):
            return
    enqueue(target_key(new))
    if kind == "RESYNC" or (
        kind == "MODIFIED" and policy_index(old or {}) == policy_index(new) and _traffic(old) == _traffic(new)
    ):
        return
    for value in {*policy_index(old or {}), *policy_index(new)}:
        ns, name = value.split("/", 1)
        enqueue(ObjectKey("RolloutPolicy", ns, name))


def _rollout_target(rollout: Obj) -> ObjectKey | None:
    labels = _labels(rollout)
    target = labels.get(TARGET_LABEL)
    return ObjectKey(labels.get(TARGET_KIND_LABEL, "Service"), _ns(rollout), target) if target else None


def _rollout_changed(enqueue: Callable[[ObjectKey], None], kind: str, old: Obj | None, new: Obj) -> None:
    """A Rollout matters when it appears, goes, or its spec changes (a manual request bumps generation);
    status writes are the controller's own and need no reconcile."""
    if kind == "MODIFIED" and old is not None and meta(old).get("generation") == meta(new).get("generation"):
        return
    target = _rollout_target(new)
    if target is not None:
        enqueue(target)
