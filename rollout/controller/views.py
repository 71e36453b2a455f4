"""Read-only views of the Kubernetes objects a reconcile looks at (plain dicts in, frozen values out).

Pure: no I/O. The informers hand over the JSON the API server returned; these functions pick out what the
controller decides on and say how a Knative object reports readiness."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollout.api.common import POLICY_LABEL
from rollout.engine.observations import MISSING_REASON, ObservedTraffic, RevisionState
from rollout.knative import minscale
from rollout.knative.minscale import MinScale

Obj = Mapping[str, Any]

SERVICE_LABEL = "serving.knative.dev/service"
CONFIGURATION_LABEL = "serving.knative.dev/configuration"
GENERATION_LABEL = "serving.knative.dev/configurationGeneration"


@dataclass(frozen=True)
class ObjectKey:
    """What the work queue holds: one object (a target Service/Route, or a RolloutPolicy)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def meta(obj: Obj) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def condition(obj: Obj, type_: str) -> Mapping[str, Any] | None:
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return None
    for c in status.get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return None


def condition_status(obj: Obj, type_: str) -> bool | None:
    """True / False for a condition that says so; None when it is Unknown or absent."""
    c = condition(obj, type_)
    if c is None:
        return None
    return {"True": True, "False": False}.get(str(c.get("status")))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class TargetView:
    """A Knative Service or standalone Route that opted in."""

    kind: str  # Service | Route
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int | None
    labels: Mapping[str, str]
    spec_traffic: tuple[Mapping[str, Any], ...]
    status_traffic: tuple[Mapping[str, Any], ...]
    routes_ready: bool | None  # the routing part is Ready (Service: RoutesReady, Route: Ready)
    observed_generation: int | None
    latest_created: str | None
    latest_ready: str | None
    managed_fields: tuple[Mapping[str, Any], ...] = ()

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.kind, self.namespace, self.name)

    @property
    def policy_name(self) -> str | None:
        return self.labels.get(POLICY_LABEL) or None

    @property
    def in_service(self) -> bool:
        return self.kind == "Service"


def target_view(obj: Obj) -> TargetView:
    m = meta(obj)
    kind = str(obj.get("kind") or "Service")
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)
    spec_traffic = tuple(e for e in (spec.get("traffic") or ()) if isinstance(e, Mapping))
    if not spec_traffic and kind == "Service":
        spec_traffic = ({"latestRevision": True, "percent": 100},)  # Knative's default for a Service
    ready_type = "RoutesReady" if kind == "Service" else "Ready"
    routes_ready = condition_status(obj, ready_type)
    if routes_ready is None and kind == "Service" and condition(obj, "RoutesReady") is None:
        routes_ready = condition_status(obj, "Ready")
    return TargetView(
        kind=kind,
        namespace=str(m.get("namespace") or ""),
        name=str(m.get("name") or ""),
        uid=str(m.get("uid") or ""),
        resource_version=str(m.get("resourceVersion") or ""),
        generation=_int(m.get("generation")),
        labels=dict(m.get("labels") or {}),
        spec_traffic=spec_traffic,
        status_traffic=tuple(e for e in (status.get("traffic") or ()) if isinstance(e, Mapping)),
        routes_ready=routes_ready,
        observed_generation=_int(status.get("observedGeneration")),
        latest_created=status.get("latestCreatedRevisionName") or None,
        latest_ready=status.get("latestReadyRevisionName") or None,
        managed_fields=tuple(f for f in (m.get("managedFields") or ()) if isinstance(f, Mapping)),
    )


def observed_traffic(view: TargetView) -> ObservedTraffic:
    """What Knative serves: status.traffic, counted as served only when the routing is Ready for the
    current generation (Knative keeps the old split, and says so, while a referenced revision is not Ready)."""
    percents: dict[str, int] = {}
    tags: dict[str, str] = {}
    for entry in view.status_traffic:
        name = str(entry.get("revisionName") or "")
        if not name:
            continue
        percents[name] = percents.get(name, 0) + int(entry.get("percent") or 0)
        if entry.get("tag"):
            tags[str(entry["tag"])] = name
    current = view.generation is None or view.observed_generation == view.generation
    return ObservedTraffic(
        percents=percents,
        tags=tags,
        ready=bool(view.routes_ready) and current,
        failed=view.routes_ready is False and current,
    )


# What Knative itself writes on a Revision's metadata, besides the template's labels and annotations: none of
# it is part of the configuration the user asked for. (Every serving.knative.dev/ label is Knative's:
# service, configuration, configurationGeneration, configurationUID, routingState, route, ...; its
# annotations are listed, because users do set some of that prefix on a template, e.g. progress-deadline.)
KNATIVE_LABEL_PREFIX = "serving.knative.dev/"
KNATIVE_ANNOTATIONS = frozenset(
    {
        "serving.knative.dev/creator",
        "serving.knative.dev/lastModifier",
        "serving.knative.dev/routes",
        "serving.knative.dev/routingStateModified",
        "serving.knative.dev/lastPinned",
        # the kn client stamps every update with the time: bookkeeping, not configuration
        "client.knative.dev/updateTimestamp",
    }
)


def template_metadata(labels: Mapping[str, Any], annotations: Mapping[str, Any]) -> Mapping[str, str]:
    """The labels and annotations of a Revision that came from its template (what the user set), as one
    comparable mapping (labels prefixed `label:`, annotations `annotation:`)."""
    out = {f"label:{k}": str(v) for k, v in labels.items() if not str(k).startswith(KNATIVE_LABEL_PREFIX)}
    out.update(
        (f"annotation:{k}", str(v)) for k, v in annotations.items() if str(k) not in KNATIVE_ANNOTATIONS
    )
    return out


@dataclass(frozen=True)
class RevisionView:
    name: str
    namespace: str
    generation: int | None  # serving.knative.dev/configurationGeneration
    service: str | None
    configuration: str | None
    ready: bool | None
    reason: str = ""
    message: str = ""
    spec: Mapping[str, Any] = field(default_factory=dict)
    template_metadata: Mapping[str, str] = field(default_factory=dict)  # see `template_metadata()`
    pods: int | None = None  # status.actualReplicas: ready pods
    wanted_pods: int | None = None  # status.desiredReplicas: what its autoscaler wants
    min_scale: MinScale = field(default_factory=lambda: minscale.read({}))

    def state(self) -> RevisionState:
        return RevisionState(
            self.name,
            self.ready,
            self.reason,
            self.message,
            self.pods,
            self.wanted_pods,
            max_pods=self.min_scale.ceiling,
        )


def revision_view(obj: Obj) -> RevisionView:
    m = meta(obj)
    labels = m.get("labels") or {}
    ready = condition(obj, "Ready")
    spec = obj.get("spec")
    annotations = m.get("annotations") or {}
    scale = minscale.read(annotations)
    pods, wanted = _pods(obj, scale)
    return RevisionView(
        name=str(m.get("name") or ""),
        namespace=str(m.get("namespace") or ""),
        generation=_int(labels.get(GENERATION_LABEL)),
        service=labels.get(SERVICE_LABEL),
        configuration=labels.get(CONFIGURATION_LABEL),
        ready=condition_status(obj, "Ready"),
        reason=str((ready or {}).get("reason") or ""),
        message=str((ready or {}).get("message") or ""),
        spec=spec if isinstance(spec, Mapping) else {},
        template_metadata=template_metadata(labels, minscale.authored(annotations)),
        pods=pods,
        wanted_pods=wanted,
        min_scale=scale,
    )


def revision_pods(obj: Obj) -> tuple[int | None, int | None]:
    """The revision's ready pods (status.actualReplicas) and the pods it should have (see `_wanted_pods`)."""
    return _pods(obj, minscale.read(meta(obj).get("annotations") or {}))


def _pods(obj: Obj, scale: MinScale) -> tuple[int | None, int | None]:
    status = obj.get("status") or {}
    return _int(status.get("actualReplicas")), _wanted_pods(status, scale)


def revision_short_of_pods(obj: Obj) -> bool:
    """Fewer of the revision's pods are ready than it should have (RevisionState.short says when)."""
    pods, wanted = revision_pods(obj)
    return RevisionState("", None, pods=pods, wanted_pods=wanted).short


def _wanted_pods(status: Mapping[str, Any], scale: MinScale) -> int | None:
    """The pods a revision should have: what its autoscaler wants (desiredReplicas), and at least its own
    min-scale, which Knative applies to a revision a route references (the controller references the candidate
    from the start) but reports only at the autoscaler's next tick. A pre-warm hold (rollout.knative.minscale)
    is not its own: it counts once Knative reports it in desiredReplicas, and not before."""
    desired = _int(status.get("desiredReplicas"))
    floor = scale.floor
    if desired is None or floor is None:
        return desired
    return max(desired, floor)


def revision_state(revisions: Mapping[str, RevisionView], name: str) -> RevisionState:
    rev = revisions.get(name)
    if rev is None:
        return RevisionState(name, None, MISSING_REASON, f"revision {name} does not exist (yet)")
    return rev.state()


def revision_generation(name: str, revisions: Mapping[str, RevisionView]) -> int | None:
    """The configuration generation of a revision: its label, else the `-00042` suffix Knative names with."""
    rev = revisions.get(name)
    if rev is not None and rev.generation is not None:
        return rev.generation
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def entries_summary(entries: Sequence[Mapping[str, Any]]) -> str:
    """`hello-00001 90% (stable), hello-00002 10% (canary), latest 0% (latest)`"""
    parts = []
    for e in entries:
        who = str(e.get("revisionName") or ("latest" if e.get("latestRevision", True) else "?"))
        text = f"{who} {int(e.get('percent') or 0)}%"
        if e.get("tag"):
            text += f" ({e['tag']})"
        parts.append(text)
    return ", ".join(parts) or "(empty)"
