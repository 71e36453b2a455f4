"""Validation common to every object (metadata: names, labels, annotations, finalizers) and the `Invalid`
error the API server answers with (422, `details.causes` naming each field)."""

from __future__ import annotations

import re

from rollout_lab.sandbox.apiserver.resources import Cause, ResourceSpec
from rollout_lab.sandbox.apiserver.selectors import label_key_error, label_value_error
from rollout_lab.sandbox.store_api import ApiError, Obj, ResourceType

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_ANNOTATIONS_BYTES = 256 * 1024

NAME_RULES: dict[str, tuple[re.Pattern[str], int, str]] = {
    "subdomain": (
        _DNS1123_SUBDOMAIN,
        253,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
        "and must start and end with an alphanumeric character",
    ),
    "label": (
        _DNS1123_LABEL,
        63,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
        "start and end with an alphanumeric character",
    ),
    "dns1035": (
        _DNS1035_LABEL,
        63,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character",
    ),
}


def cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"reason": reason, "message": message, "field": field}


def invalid_value(field: str, value: object, why: str) -> Cause:
    return cause(field, f"Invalid value: {_render(value)}: {why}")


def required(field: str, why: str = "Required value") -> Cause:
    return cause(field, why, "FieldValueRequired")


def _render(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return str(value)


def invalid(rt: ResourceType, name: str, causes: list[Cause]) -> ApiError:
    """The 422 Invalid error for `causes`, worded like the API server's."""
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    summary = ", ".join(f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {summary}',
        {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes},
    )


def name_error(name: str, rule: str) -> str | None:
    pattern, limit, why = NAME_RULES.get(rule, NAME_RULES["subdomain"])
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    if not pattern.match(name):
        return why
    return None


def validate_metadata(spec: ResourceSpec, obj: Obj, old: Obj | None) -> list[Cause]:
    """Field errors of `obj.metadata` (names, labels, annotations, finalizers); `old` is None on create."""
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = meta.get("name", "")
    if old is None and isinstance(name, str) and name:
        why = name_error(name, spec.name_rule)
        if why:
            causes.append(invalid_value("metadata.name", name, why))
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            causes.append(invalid_value("metadata.labels", labels, "must be a map of strings"))
        else:
            for key, value in labels.items():
                why = label_key_error(key)
                if why:
                    causes.append(invalid_value("metadata.labels", key, why))
                if not isinstance(value, str):
                    causes.append(invalid_value(f"metadata.labels.{key}", value, "must be a string"))
                elif label_value_error(value):
                    causes.append(invalid_value("metadata.labels", value, label_value_error(value) or ""))
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            causes.append(invalid_value("metadata.annotations", annotations, "must be a map of strings"))
        else:
            size = 0
            for key, value in annotations.items():
                why = label_key_error(key)
                if why:
                    causes.append(invalid_value("metadata.annotations", key, why))
                if not isinstance(value, str):
                    causes.append(invalid_value(f"metadata.annotations.{key}", value, "must be a string"))
                else:
                    size += len(key) + len(value)
            if size > _MAX_ANNOTATIONS_BYTES:
                causes.append(
                    cause(
                        "metadata.annotations",
                        "Too long: must have at most 262144 bytes",
                        "FieldValueTooLong",
                    )
                )
    finalizers = meta.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
            causes.append(invalid_value("metadata.finalizers", finalizers, "must be a list of strings"))
        else:
            for i, fin in enumerate(finalizers):
                if label_key_error(fin):
                    causes.append(invalid_value(f"metadata.finalizers[{i}]", fin, label_key_error(fin) or ""))
            if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
                before = set((old.get("metadata") or {}).get("finalizers") or [])
                added = [f for f in finalizers if f not in before]
                if added:
                    causes.append(
                        cause(
                            "metadata.finalizers",
                            f"Forbidden: no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {added!r}",
                            "FieldValueForbidden",
                        )
                    )
    owners = meta.get("ownerReferences")
    if owners is not None:
        if not isinstance(owners, list):
            causes.append(invalid_value("metadata.ownerReferences", owners, "must be a list"))
        else:
            for i, ref in enumerate(owners):
                for key in ("apiVersion", "kind", "name", "uid"):
                    if not isinstance(ref, dict) or not ref.get(key):
                        causes.append(required(f"metadata.ownerReferences[{i}].{key}"))
            controllers = [r for r in owners if isinstance(r, dict) and r.get("controller") is True]
            if len(controllers) > 1:
                causes.append(
                    invalid_value(
                        "metadata.ownerReferences",
                        owners,
                        "Only one reference can have Controller set to true",
                    )
                )
    return causes
