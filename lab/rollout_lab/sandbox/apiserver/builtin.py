"""The built-in Kubernetes kinds the sandbox serves: Namespaces, ConfigMaps, Secrets, Events (core and
events.k8s.io), Leases and CustomResourceDefinitions, with their server-side defaults, validation, field
selectors and `kubectl get` columns."""

from __future__ import annotations

import base64
import binascii

from rollout_lab.sandbox.apiserver import builtin_schema, kinds
from rollout_lab.sandbox.apiserver.resources import Cause, PrinterColumn, ResourceRegistry, ResourceSpec
from rollout_lab.sandbox.apiserver.validation import invalid_value, required
from rollout_lab.sandbox.store_api import Obj

AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


def _prepare_namespace(obj: Obj, old: Obj | None) -> None:
    meta = obj["metadata"]
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
    if old is None:
        obj["status"] = {"phase": "Active"}


def _validate_data(field: str, data: object, base64_values: bool) -> list[Cause]:
    if data is None:
        return []
    if not isinstance(data, dict):
        return [invalid_value(field, data, "must be a map")]
    causes: list[Cause] = []
    for key, value in data.items():
        if not key or len(key) > 253 or not all(c.isalnum() or c in "-._" for c in key):
            causes.append(
                invalid_value(
                    field, key, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
                )
            )
        if not isinstance(value, str):
            causes.append(invalid_value(f"{field}[{key}]", value, "must be a string"))
        elif base64_values:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                causes.append(
                    invalid_value(f"{field}[{key}]", "<secret contents redacted>", "illegal base64 data")
                )
    return causes


def _immutable(obj: Obj, old: Obj | None, fields: tuple[str, ...]) -> list[Cause]:
    """ConfigMaps and Secrets marked `immutable: true` keep their data (and the mark) for good."""
    if old is None or not old.get("immutable"):
        return []
    causes = [
        invalid_value(f, "...", "field is immutable when `immutable` is set")
        for f in fields
        if obj.get(f) != old.get(f)
    ]
    if not obj.get("immutable"):
        causes.append(
            invalid_value("immutable", obj.get("immutable"), "field is immutable when `immutable` is set")
        )
    return causes


def _validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _immutable(obj, old, ("data", "binaryData"))
    causes += _validate_data("data", obj.get("data"), False)
    return causes + _validate_data("binaryData", obj.get("binaryData"), True)


def _prepare_secret(obj: Obj, old: Obj | None) -> None:
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    obj.setdefault("type", "Opaque")


def _validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _immutable(obj, old, ("data",)) + _validate_data("data", obj.get("data"), True)
    if old is not None and old.get("type") != obj.get("type"):
        causes.append(invalid_value("type", obj.get("type"), "field is immutable"))
    return causes


def _validate_event(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        causes.append(required("involvedObject"))
    elif obj["metadata"].get("namespace") != involved.get("namespace", obj["metadata"].get("namespace")):
        causes.append(invalid_value("involvedObject.namespace", involved.get("namespace"),
                                    "does not match event.namespace"))  # fmt: skip
    if obj.get("type") not in (None, "", "Normal", "Warning"):
        causes.append(invalid_value("type", obj.get("type"), 'supported values: "Normal", "Warning"'))
    return causes


def _validate_event_v1(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    if not obj.get("eventTime"):
        causes.append(required("eventTime"))
    for key in ("reportingController", "reportingInstance", "action", "reason"):
        if not obj.get(key):
            causes.append(required(key))
    if obj.get("type") not in ("Normal", "Warning"):
        causes.append(invalid_value("type", obj.get("type"), 'supported values: "Normal", "Warning"'))
    return causes


def _validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        causes.append(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        causes.append(
            invalid_value("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    return causes


NAMESPACES = ResourceSpec(
    kinds.NAMESPACES,
    schema=builtin_schema.namespace_schema(),
    uses_generation=False,
    name_rule="label",
    prepare=_prepare_namespace,
    field_paths={"status.phase": ("status", "phase")},
    printer_columns=(PrinterColumn("Status", "string", ".status.phase"), AGE),
)
CONFIGMAPS = ResourceSpec(
    kinds.CONFIGMAPS,
    schema=builtin_schema.configmap_schema(),
    uses_generation=False,
    validate=_validate_configmap,
    printer_columns=(PrinterColumn("Data", "integer", ".data", format="count"), AGE),
)
SECRETS = ResourceSpec(
    kinds.SECRETS,
    schema=builtin_schema.secret_schema(),
    uses_generation=False,
    prepare=_prepare_secret,
    validate=_validate_secret,
    field_paths={"type": ("type",)},
    printer_columns=(
        PrinterColumn("Type", "string", ".type"),
        PrinterColumn("Data", "integer", ".data", format="count"),
        AGE,
    ),
)
_EVENT_FIELDS = {
    "involvedObject.kind": ("involvedObject", "kind"),
    "involvedObject.namespace": ("involvedObject", "namespace"),
    "involvedObject.name": ("involvedObject", "name"),
    "involvedObject.uid": ("involvedObject", "uid"),
    "involvedObject.apiVersion": ("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": ("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": ("involvedObject", "fieldPath"),
    "reason": ("reason",),
    "reportingComponent": ("reportingComponent",),
    "source": ("source", "component"),
    "type": ("type",),
}
EVENTS = ResourceSpec(
    kinds.EVENTS,
    schema=builtin_schema.event_schema(),
    uses_generation=False,
    validate=_validate_event,
    field_paths=_EVENT_FIELDS,
    printer_columns=(
        PrinterColumn("Last Seen", "date", ".lastTimestamp"),
        PrinterColumn("Type", "string", ".type"),
        PrinterColumn("Reason", "string", ".reason"),
        PrinterColumn("Object", "string", ".involvedObject", format="objectref"),
        PrinterColumn("Message", "string", ".message"),
        PrinterColumn("Name", "string", ".metadata.name", priority=1),
    ),
)
EVENTS_V1 = ResourceSpec(
    kinds.EVENTS_V1,
    schema=builtin_schema.event_v1_schema(),
    uses_generation=False,
    validate=_validate_event_v1,
    field_paths={
        "regarding.kind": ("regarding", "kind"),
        "regarding.name": ("regarding", "name"),
        "regarding.namespace": ("regarding", "namespace"),
        "reason": ("reason",),
        "type": ("type",),
        "reportingController": ("reportingController",),
    },
    printer_columns=(
        PrinterColumn("Type", "string", ".type"),
        PrinterColumn("Reason", "string", ".reason"),
        PrinterColumn("Object", "string", ".regarding", format="objectref"),
        PrinterColumn("Note", "string", ".note"),
        PrinterColumn("Name", "string", ".metadata.name", priority=1),
    ),
)
LEASES = ResourceSpec(
    kinds.LEASES,
    schema=builtin_schema.lease_schema(),
    uses_generation=False,
    validate=_validate_lease,
    printer_columns=(PrinterColumn("Holder", "string", ".spec.holderIdentity"), AGE),
)


def core_specs() -> list[ResourceSpec]:
    """The built-in kinds other than CustomResourceDefinitions (see `crds`)."""
    return [NAMESPACES, CONFIGMAPS, SECRETS, EVENTS, EVENTS_V1, LEASES]


def register_core(registry: ResourceRegistry) -> None:
    for spec in core_specs():
        registry.add(spec)
