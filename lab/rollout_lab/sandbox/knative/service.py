"""What Knative's Service reconciler wants (pure): the Service's Configuration and Route, and its status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout.knative.routing import route_traffic_for_service
from rollout.knative.traffic import default_traffic
from rollout_lab.sandbox.apiserver.objects import clone
from rollout_lab.sandbox.knative import conditions, names
from rollout_lab.sandbox.store_api import Obj

OUT_OF_DATE = "OutOfDate"


def meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def update_request(obj: Mapping[str, Any], **metadata: Any) -> Obj:
    """`obj` as the body of an update: without status, its metadata a new mapping with `metadata` set. The
    rest is shared with `obj`, not copied: the store copies what it stores, and nobody changes a request."""
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {**meta(obj), **metadata}
    return out


def owner_reference(owner: Mapping[str, Any], kind: str) -> Obj:
    return {
        "apiVersion": names.API_VERSION,
        "kind": kind,
        "name": meta(owner).get("name"),
        "uid": meta(owner).get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _child_metadata(service: Mapping[str, Any]) -> Obj:
    m = meta(service)
    labels = dict(m.get("labels") or {})
    labels[names.SERVICE_LABEL] = str(m.get("name"))
    labels[names.SERVICE_UID_LABEL] = str(m.get("uid", ""))
    return {
        "name": m.get("name"),
        "namespace": m.get("namespace"),
        "labels": labels,
        "annotations": names.propagated_annotations(m.get("annotations")),
        "ownerReferences": [owner_reference(service, "Service")],
    }


def desired_configuration(service: Mapping[str, Any]) -> Obj:
    """The Configuration Knative keeps for a Service (same name, the Service's template)."""
    spec = service.get("spec") or {}
    return {
        "apiVersion": names.API_VERSION,
        "kind": "Configuration",
        "metadata": _child_metadata(service),
        "spec": {"template": clone(spec.get("template") or {})},
    }


def desired_route(service: Mapping[str, Any]) -> Obj:
    """The Route Knative keeps for a Service: its traffic, unpinned entries following the Configuration."""
    spec = service.get("spec") or {}
    traffic = default_traffic(spec.get("traffic"), in_service=True)
    metadata = _child_metadata(service)
    metadata["labels"].pop(names.SERVICE_UID_LABEL, None)
    return {
        "apiVersion": names.API_VERSION,
        "kind": "Route",
        "metadata": metadata,
        "spec": {"traffic": route_traffic_for_service(traffic, str(meta(service).get("name")))},
    }


def needs_update(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Knative rewrites a child when its spec, labels or annotations differ from what it wants."""
    annotations = dict(meta(current).get("annotations") or {})
    annotations.pop(names.ROUTES_ANNOTATION, None)  # the route labeler's, not the Service's
    return (
        current.get("spec") != desired.get("spec")
        or (meta(current).get("labels") or {}) != desired["metadata"]["labels"]
        or annotations != desired["metadata"]["annotations"]
    )


def route_may_update(service: Mapping[str, Any], configuration: Mapping[str, Any] | None) -> bool:
    """With a user-chosen revision name, Knative updates the Route only once the Configuration has
    observed the new template (so traffic never names a revision that is not created yet)."""
    template_name = meta(((service.get("spec") or {}).get("template")) or {}).get("name")
    if not template_name:
        return True
    return configuration is not None and _observed(configuration)


def _observed(obj: Mapping[str, Any]) -> bool:
    status = obj.get("status") or {}
    return bool(status) and status.get("observedGeneration") == meta(obj).get("generation")


def _propagate(source: Mapping[str, Any], type_: str) -> conditions.Condition:
    ready = conditions.find(((source.get("status") or {}).get("conditions")), "Ready") or {}
    return conditions.make(
        type_,
        str(ready.get("status", "Unknown")),
        str(ready.get("reason", "")),
        str(ready.get("message", "")),
    )


def service_status(
    service: Mapping[str, Any],
    configuration: Mapping[str, Any] | None,
    route: Mapping[str, Any] | None,
    now: float,
) -> Obj:
    previous = service.get("status") or {}
    status: Obj = {"observedGeneration": meta(service).get("generation")}
    for key in ("latestCreatedRevisionName", "latestReadyRevisionName", "url", "address", "traffic"):
        if key in previous:
            status[key] = clone(previous[key])
    if configuration is None or not _observed(configuration):
        config_ready = conditions.make(
            "ConfigurationsReady",
            "Unknown",
            OUT_OF_DATE,
            "The Configuration is still working to reflect the latest desired specification.",
        )
    else:
        config_ready = _propagate(configuration, "ConfigurationsReady")
        config_status = configuration.get("status") or {}
        for key in ("latestCreatedRevisionName", "latestReadyRevisionName"):
            if config_status.get(key):
                status[key] = config_status[key]
    if route is None or not _observed(route):
        routes_ready = conditions.make(
            "RoutesReady",
            "Unknown",
            OUT_OF_DATE,
            "The Route is still working to reflect the latest desired specification.",
        )
    else:
        routes_ready = _propagate(route, "RoutesReady")
        route_status = route.get("status") or {}
        for key in ("url", "address", "traffic"):
            if key in route_status:
                status[key] = clone(route_status[key])
        if routes_ready["status"] == "True" and not _traffic_migrated(route, configuration):
            routes_ready = conditions.make(
                "RoutesReady",
                "Unknown",
                "TrafficNotMigrated",
                "Traffic is not yet migrated to the latest revision.",
            )
    status["conditions"] = conditions.merge(
        previous.get("conditions"), conditions.living([config_ready, routes_ready]), now
    )
    return status


def _traffic_migrated(route: Mapping[str, Any], configuration: Mapping[str, Any] | None) -> bool:
    """Knative's checkRoutesNotReady: status.traffic equals spec.traffic with the Configuration resolved
    to its latest ready revision (urls and latestRevision ignored)."""
    want = list((route.get("spec") or {}).get("traffic") or [])
    got = list((route.get("status") or {}).get("traffic") or [])
    if len(want) != len(got):
        return False
    config_name = meta(configuration).get("name") if configuration else None
    latest_ready = ((configuration or {}).get("status") or {}).get("latestReadyRevisionName", "")
    ignored = ("url", "latestRevision", "configurationName")
    for wanted, actual in zip(want, got, strict=True):
        wanted_view = {k: v for k, v in wanted.items() if k not in ignored}
        if wanted.get("configurationName") and wanted.get("configurationName") == config_name:
            wanted_view["revisionName"] = latest_ready
        if wanted_view != {k: v for k, v in actual.items() if k not in ignored}:
            return False
    return True
