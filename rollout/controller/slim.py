"""What the informer caches keep of each object: everything but the metadata.managedFields the controller
never reads (client-go controllers strip them with a cache transform for the same reason).

managedFields are most of a Knative object's size. The controller reads them in one place: drift detection on
a target (a Service or a standalone Route) asks which field manager last wrote spec.traffic
(rollout.controller.drift.last_traffic_writer). So a target keeps the entries that touch spec.traffic, outside
subresources, each reduced to its manager, operation, time and the traffic field; every other kind keeps none.
Drift detection gives the same answer on the slim object as on the full one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rollout.controller.drift import touches_traffic
from rollout.kube.client import Obj

TRAFFIC_FIELDS: dict[str, Any] = {"f:spec": {"f:traffic": {}}}


def _traffic_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: entry[k] for k in ("manager", "operation", "time", "apiVersion") if k in entry}
    kept["fieldsType"] = "FieldsV1"
    kept["fieldsV1"] = TRAFFIC_FIELDS
    return kept


def slim_target(obj: Obj) -> Obj:
    """A Service or Route with only the managedFields entries that wrote spec.traffic (no subresource)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        fields = meta["managedFields"] or ()
        meta["managedFields"] = [
            _traffic_entry(e)
            for e in fields
            if isinstance(e, Mapping) and not e.get("subresource") and touches_traffic(e.get("fieldsV1"))
        ]
    return obj


def slim_other(obj: Obj) -> Obj:
    """Revisions, Rollouts, policies: no managedFields at all."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def slimmer(kind: str) -> Callable[[Obj], Obj]:
    return slim_target if kind in ("Service", "Route") else slim_other
