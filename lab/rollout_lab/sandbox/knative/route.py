"""What Knative's Route reconciler wants (pure): the Route's status, and the routing labels it puts on the
revisions and configurations it references."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.knative.routing import (
    ConfigurationView,
    RevisionView,
    cluster_local_host,
    resolve_traffic,
    route_host,
)
from rollout_lab.sandbox.apiserver.objects import clone
from rollout_lab.sandbox.knative import conditions, names
from rollout_lab.sandbox.knative.service import meta, update_request
from rollout_lab.sandbox.store_api import Obj


def revision_view(revision: Mapping[str, Any]) -> RevisionView:
    labels = meta(revision).get("labels") or {}
    ready = conditions.status_of(revision)
    return RevisionView(
        name=str(meta(revision).get("name")),
        configuration=str(labels.get(names.CONFIGURATION_LABEL, "")),
        ready="True" if ready == "True" else "False" if ready == "False" else "Unknown",
        service=str(labels.get(names.SERVICE_LABEL, "")),
    )


def configuration_view(configuration: Mapping[str, Any]) -> ConfigurationView:
    status = configuration.get("status") or {}
    ready = conditions.status_of(configuration)
    return ConfigurationView(
        name=str(meta(configuration).get("name")),
        latest_ready_revision=str(status.get("latestReadyRevisionName") or ""),
        ready="True" if ready == "True" else "False" if ready == "False" else "Unknown",
    )


def owning_service(route: Mapping[str, Any]) -> str:
    for ref in meta(route).get("ownerReferences") or []:
        if ref.get("kind") == "Service" and ref.get("controller"):
            return str(ref.get("name", ""))
    return ""


def route_status(
    route: Mapping[str, Any],
    revisions: Mapping[str, RevisionView],
    configurations: Mapping[str, ConfigurationView],
    *,
    domain: str,
    now: float,
) -> Obj:
    """The Route's status. `revisions` and `configurations` are views of the namespace's objects by name
    (`revision_view`, `configuration_view`).

    When a referenced target is missing or not Ready, status.traffic (and the served split) stay as they
    were and AllTrafficAssigned says why; observedGeneration moves anyway."""
    rmeta = meta(route)
    name, namespace = str(rmeta.get("name")), str(rmeta.get("namespace"))
    previous = route.get("status") or {}
    resolution = resolve_traffic(
        (route.get("spec") or {}).get("traffic") or [],
        route=name,
        namespace=namespace,
        domain=domain,
        revisions=revisions,
        configurations=configurations,
        owner_service=owning_service(route),
    )
    status: Obj = {
        "observedGeneration": rmeta.get("generation"),
        "url": f"http://{route_host(name, namespace, domain)}",
        "address": {"url": f"http://{cluster_local_host(name, namespace)}"},
    }
    if resolution.problem is None and resolution.traffic is not None:
        status["traffic"] = resolution.traffic
        assigned = conditions.make("AllTrafficAssigned", "True")
        ingress = conditions.make("IngressReady", "True")
    else:
        problem = resolution.problem
        assert problem is not None
        assigned = conditions.make("AllTrafficAssigned", problem.status, problem.reason, problem.message)
        if "traffic" in previous:
            status["traffic"] = clone(previous["traffic"])
            kept = conditions.find(previous.get("conditions"), "IngressReady") or conditions.make(
                "IngressReady", "True"
            )
            ingress = {k: v for k, v in kept.items() if k != "lastTransitionTime"}
        else:
            ingress = conditions.make(
                "IngressReady", "Unknown", "IngressNotConfigured", "Ingress has not yet been reconciled."
            )
    certificate = conditions.make(
        "CertificateProvisioned", "True", "TLSNotEnabled", "external-domain-tls is not enabled"
    )
    status["conditions"] = conditions.merge(
        previous.get("conditions"), conditions.living([assigned, ingress, certificate]), now
    )
    return status


@dataclass(frozen=True)
class RoutingLabels:
    """Per object name: the routes referencing it (sorted). Revisions absent from `revisions` are
    referenced by no route."""

    revisions: Mapping[str, tuple[str, ...]]
    configurations: Mapping[str, tuple[str, ...]]


def routing_references(
    routes: Iterable[Mapping[str, Any]],
    configurations: Mapping[str, Mapping[str, Any]],
) -> RoutingLabels:
    """Which revisions and configurations each Route references in its spec (configurations through their
    latest ready revision), as Knative's route labeler sees them: a revision referenced while not yet Ready
    is already `active`, so that its min-scale applies."""
    revisions: dict[str, set[str]] = {}
    configs: dict[str, set[str]] = {}
    for route in routes:
        route_name = str(meta(route).get("name"))
        for entry in (route.get("spec") or {}).get("traffic") or []:
            if entry.get("revisionName"):
                revisions.setdefault(str(entry["revisionName"]), set()).add(route_name)
            elif entry.get("configurationName"):
                config_name = str(entry["configurationName"])
                configs.setdefault(config_name, set()).add(route_name)
                latest = ((configurations.get(config_name) or {}).get("status") or {}).get(
                    "latestReadyRevisionName"
                )
                if latest:
                    revisions.setdefault(str(latest), set()).add(route_name)
    return RoutingLabels(
        revisions={k: tuple(sorted(v)) for k, v in revisions.items()},
        configurations={k: tuple(sorted(v)) for k, v in configs.items()},
    )


def labeled_revision(revision: Mapping[str, Any], routes: Sequence[str], now: float) -> Obj | None:
    """The revision with its routingState label and routes annotation updated, or None if unchanged."""
    labels = dict(meta(revision).get("labels") or {})
    annotations = dict(meta(revision).get("annotations") or {})
    current = labels.get(names.ROUTING_STATE_LABEL, names.ROUTING_PENDING)
    if routes:
        state = names.ROUTING_ACTIVE
    elif current == names.ROUTING_PENDING:
        state = names.ROUTING_PENDING
    else:
        state = names.ROUTING_RESERVE
    wanted_routes = ",".join(routes)
    changed = False
    if state != current:
        labels[names.ROUTING_STATE_LABEL] = state
        annotations[names.ROUTING_STATE_MODIFIED_ANNOTATION] = conditions.rfc3339(now)
        changed = True
    if annotations.get(names.ROUTES_ANNOTATION, "") != wanted_routes:
        if wanted_routes:
            annotations[names.ROUTES_ANNOTATION] = wanted_routes
        else:
            annotations.pop(names.ROUTES_ANNOTATION, None)
        changed = True
    if not changed:
        return None
    return update_request(revision, labels=labels, annotations=annotations)
