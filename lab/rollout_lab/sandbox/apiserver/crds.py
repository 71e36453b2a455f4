"""CustomResourceDefinitions: their own validation, and the controller that serves a kind once its CRD is
applied (discovery, REST, OpenAPI, schema validation, printer columns) and removes it with its instances
when the CRD is deleted — as the apiextensions server does.

One version is served per CRD: the storage version (custom resources of other versions are not converted).
"""

from __future__ import annotations

import re
from typing import Any

from rollout_lab.sandbox.apiserver import cel_rules, kinds
from rollout_lab.sandbox.apiserver.builtin import AGE
from rollout_lab.sandbox.apiserver.builtin_schema import crd_schema
from rollout_lab.sandbox.apiserver.eventlog import LogEntry
from rollout_lab.sandbox.apiserver.objects import copy_obj, rfc3339
from rollout_lab.sandbox.apiserver.resources import Cause, PrinterColumn, ResourceSpec
from rollout_lab.sandbox.apiserver.store import MemoryStore
from rollout_lab.sandbox.apiserver.validation import cause, invalid_value, name_error, required
from rollout_lab.sandbox.store_api import Obj, ResourceType

API_SERVER_MANAGER = "kube-apiserver"  # the apiextensions controllers' managedFields manager

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _storage_version(spec: Obj) -> Obj | None:
    versions = spec.get("versions") or []
    for version in versions:
        if isinstance(version, dict) and version.get("storage"):
            return version
    return None


def _check_structural(schema: Any, path: str, causes: list[Cause], root: bool = False) -> None:
    """The structural-schema rules the server enforces (a type everywhere it is needed)."""
    if not isinstance(schema, dict):
        causes.append(invalid_value(path, schema, "must be an object"))
        return
    has_type = "type" in schema
    untyped_ok = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
        "x-kubernetes-int-or-string"
    )
    if not has_type and not untyped_ok and not root:
        causes.append(
            required(f"{path}.type", "Required value: must not be empty for specified object fields")
        )
    if root and schema.get("type") not in (None, "object"):
        causes.append(invalid_value(f"{path}.type", schema.get("type"), 'must be "object" at the root'))
    for key, child in (schema.get("properties") or {}).items():
        _check_structural(child, f"{path}.properties[{key}]", causes)
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        why = (
            cel_rules.compile_error(str(rule.get("rule", "")))
            if isinstance(rule, dict)
            else "must be an object"
        )
        if why:
            causes.append(
                invalid_value(
                    f"{path}.x-kubernetes-validations[{i}].rule", rule, f"compilation failed: {why}"
                )
            )
    if isinstance(schema.get("items"), dict):
        _check_structural(schema["items"], f"{path}.items", causes)
    if isinstance(schema.get("additionalProperties"), dict):
        _check_structural(schema["additionalProperties"], f"{path}.additionalProperties", causes)
    if schema.get("properties") and isinstance(schema.get("additionalProperties"), dict):
        causes.append(
            cause(
                f"{path}.additionalProperties",
                "Forbidden: additionalProperties and properties are mutual exclusive",
                "FieldValueForbidden",
            )
        )


def validate_crd(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    causes: list[Cause] = []
    if not isinstance(spec, dict):
        return [required("spec")]
    group = spec.get("group")
    raw_names = spec.get("names")
    names: dict[str, Any] = raw_names if isinstance(raw_names, dict) else {}
    plural = names.get("plural")
    if not group or not isinstance(group, str) or "." not in group:
        causes.append(invalid_value("spec.group", group, "should be a domain with at least one dot"))
    list_kind = names.get("listKind")
    if list_kind and (not isinstance(list_kind, str) or not _KIND.match(list_kind)):
        causes.append(invalid_value("spec.names.listKind", list_kind, "must be a CamelCase identifier"))
    for key in ("plural", "singular"):
        value = names.get(key)
        # like the apiextensions server, a listKind is checked lowercased (it is CamelCase, e.g. FooList)
        checked = value.lower() if key == "listKind" and isinstance(value, str) else value
        if value and (not isinstance(checked, str) or name_error(checked, "label")):
            causes.append(invalid_value(f"spec.names.{key}", value, "a lowercase RFC 1123 label is required"))
    if not plural:
        causes.append(required("spec.names.plural"))
    kind = names.get("kind")
    if not kind or not isinstance(kind, str) or not _KIND.match(kind):
        causes.append(invalid_value("spec.names.kind", kind, "must be a CamelCase identifier"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            cause(
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
                "FieldValueNotSupported",
            )
        )
    if plural and group and obj["metadata"].get("name") != f"{plural}.{group}":
        causes.append(
            invalid_value(
                "metadata.name", obj["metadata"].get("name"), 'must be spec.names.plural+"."+spec.group'
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(
            required("spec.versions", "Required value: must have exactly one version marked as storage")
        )
        return causes
    if sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(
            invalid_value("spec.versions", "array", "must have exactly one version marked as storage version")
        )
    for i, version in enumerate(versions):
        if not isinstance(version, dict):
            continue
        schema = (
            ((version.get("schema") or {}).get("openAPIV3Schema"))
            if isinstance(version.get("schema"), dict)
            else None
        )
        if schema is None:
            causes.append(
                required(f"spec.versions[{i}].schema.openAPIV3Schema", "Required value: schemas are required")
            )
        else:
            _check_structural(schema, f"spec.versions[{i}].schema.openAPIV3Schema", causes, root=True)
    if old is not None:
        old_spec = old.get("spec") or {}
        if old_spec.get("group") != group:
            causes.append(invalid_value("spec.group", group, "field is immutable"))
        if old_spec.get("scope") != spec.get("scope"):
            causes.append(invalid_value("spec.scope", spec.get("scope"), "field is immutable"))
    return causes


def _prepare_crd(obj: Obj, old: Obj | None) -> None:
    finalizers = obj["metadata"].setdefault("finalizers", [])
    if CLEANUP_FINALIZER not in finalizers and not obj["metadata"].get("deletionTimestamp"):
        finalizers.append(CLEANUP_FINALIZER)
    names = (obj.get("spec") or {}).get("names")
    if isinstance(names, dict) and names.get("kind"):
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f"{names['kind']}List")
    for version in (obj.get("spec") or {}).get("versions") or []:
        if isinstance(version, dict):
            version.setdefault("served", True)


CRD_SPEC = ResourceSpec(
    kinds.CRDS,
    schema=crd_schema(),
    uses_generation=True,
    validate=validate_crd,
    prepare=_prepare_crd,
    printer_columns=(PrinterColumn("Created At", "date", ".metadata.creationTimestamp"),),
)


def spec_from_crd(crd: Obj) -> ResourceSpec | None:
    """The ResourceSpec a CRD serves (its storage version), or None when it serves nothing."""
    spec = crd.get("spec") or {}
    version = _storage_version(spec)
    if version is None or not version.get("served", True):
        return None
    names = spec.get("names") or {}
    rt = ResourceType(
        group=spec["group"],
        version=version["name"],
        plural=names["plural"],
        kind=names["kind"],
        namespaced=spec.get("scope") == "Namespaced",
        singular=names.get("singular") or str(names["kind"]).lower(),
        short_names=tuple(names.get("shortNames") or ()),
        has_status="status" in (version.get("subresources") or {}),
    )
    columns = tuple(
        PrinterColumn(
            name=c["name"],
            type=c.get("type", "string"),
            json_path=c["jsonPath"],
            description=c.get("description", ""),
            priority=int(c.get("priority", 0)),
            format=c.get("format", ""),
        )
        for c in version.get("additionalPrinterColumns") or []
    )
    fields = {
        str(f["jsonPath"]).lstrip("."): tuple(str(f["jsonPath"]).lstrip(".").split("."))
        for f in version.get("selectableFields") or []
    }
    return ResourceSpec(
        rt,
        uses_generation=True,
        schema=(version.get("schema") or {}).get("openAPIV3Schema"),
        printer_columns=columns or (AGE,),
        categories=tuple(names.get("categories") or ()),
        field_paths=fields,
        builtin=False,
    )


class CrdController:
    """Keeps the registry in step with the CRDs in the store (synchronously, on each CRD write)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._served: dict[str, str] = {}  # group_resource -> name of the CRD serving it
        self._shadowed: dict[str, ResourceSpec] = {}  # built-in specs a CRD replaced
        self._listening: set[str] = set()
        store.registry.add(CRD_SPEC)
        store.on_commit(kinds.CRDS, self._on_crd)

    def _on_crd(self, rt: ResourceType, entry: LogEntry) -> None:
        crd = entry.obj
        served = spec_from_crd(crd)
        if entry.type == "DELETED":
            if served is not None:
                self._unserve(served.rt.group_resource)
            return
        if crd["metadata"].get("deletionTimestamp"):
            self._cleanup(crd["metadata"]["name"])
            return
        if served is not None:
            gr = served.rt.group_resource
            current = self.store.registry.get(gr)
            if current is not None and gr not in self._served:
                self._shadowed[gr] = current
            self._served[gr] = crd["metadata"]["name"]
            self.store.registry.add(served)
            if gr not in self._listening:
                self._listening.add(gr)
                self.store.on_commit(served.rt, self._on_instance)
        self._write_status(crd)

    def _on_instance(self, rt: ResourceType, entry: LogEntry) -> None:
        """When an instance of a CRD being deleted goes away, the CRD may finish its cleanup."""
        name = self._served.get(rt.group_resource)
        if entry.type != "DELETED" or name is None:
            return
        crd = self.store.get_stored(kinds.CRDS, None, name) if self._exists(name) else None
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            self._cleanup(name)

    def _exists(self, name: str) -> bool:
        return self.store.get(kinds.CRDS, None, name) is not None

    def _write_status(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        version = _storage_version(spec) or {}
        old_status = crd.get("status") or {}
        old_conditions = {c.get("type"): c for c in old_status.get("conditions") or []}
        now = rfc3339(self.store.clock())

        def condition(kind: str, reason: str, message: str) -> Obj:
            previous = old_conditions.get(kind)
            since = previous["lastTransitionTime"] if previous and previous.get("status") == "True" else now
            return {
                "type": kind,
                "status": "True",
                "lastTransitionTime": since,
                "reason": reason,
                "message": message,
            }

        status = {
            "acceptedNames": names,
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
            "storedVersions": sorted({*old_status.get("storedVersions", []), version.get("name", "")} - {""}),
        }
        if status == old_status:
            return
        new = copy_obj(crd)
        new["status"] = status
        self.store.update(kinds.CRDS, new, subresource="status", field_manager=API_SERVER_MANAGER)

    def _cleanup(self, name: str) -> None:
        """Delete the CRD's instances; once none is left, drop its cleanup finalizer."""
        crd = self.store.get(kinds.CRDS, None, name)
        if crd is None:
            return
        served = spec_from_crd(crd)
        if served is not None and self._served.get(served.rt.group_resource) == name:
            rt = served.rt
            for obj in list(self.store.list_stored(rt, None, None)):
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    self.store.delete_object(rt, meta.get("namespace"), meta["name"])
            if self.store.list_stored(rt, None, None):
                return  # instances with finalizers of their own: the CRD waits for them
        crd = self.store.get(kinds.CRDS, None, name)
        if crd is not None and CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or []):
            crd["metadata"]["finalizers"] = [
                f for f in crd["metadata"]["finalizers"] if f != CLEANUP_FINALIZER
            ]
            self.store.update(kinds.CRDS, crd, field_manager=API_SERVER_MANAGER)

    def _unserve(self, group_resource: str) -> None:
        self._served.pop(group_resource, None)
        self.store.registry.remove(group_resource)
        original = self._shadowed.pop(group_resource, None)
        if original is not None:
            self.store.registry.add(original)
