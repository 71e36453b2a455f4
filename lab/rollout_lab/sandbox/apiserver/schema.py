"""Structural OpenAPI v3 schemas applied like the API server applies a CRD's schema to a custom resource:
drop nulls that are not nullable, prune unknown fields, apply defaults, then validate (types, required,
enum, pattern, bounds, lengths, item counts, list types, int-or-string, anyOf/oneOf/allOf/not).

`apply_schema` mutates the object and returns the field errors, worded like the server's.
CEL rules (`x-kubernetes-validations`) are evaluated by `cel_rules`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rollout.knative.traffic import json_type
from rollout_lab.sandbox.apiserver import cel_rules
from rollout_lab.sandbox.apiserver.resources import Cause
from rollout_lab.sandbox.apiserver.validation import cause

Schema = dict[str, Any]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass
class SchemaResult:
    causes: list[Cause] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # paths of unknown fields dropped


def apply_schema(schema: Schema, obj: dict[str, Any], old: dict[str, Any] | None = None) -> SchemaResult:
    """Prune, default and validate a whole object (root: apiVersion, kind, metadata always allowed);
    `old` (on update) is what CEL transition rules see as oldSelf."""
    result = SchemaResult()
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
            del meta[key]
            result.pruned.append(f"metadata.{key}")
    _prune_and_default(schema, obj, "", result, root=True)
    _validate(schema, obj, "", result.causes, root=True, old=old)
    return result


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _preserves(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def _prune_and_default(
    schema: Schema, value: Any, path: str, result: SchemaResult, root: bool = False
) -> None:
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(value):
            child = props.get(key)
            if child is None and isinstance(additional, dict):
                child = additional
            if value[key] is None and not (child or {}).get("nullable"):
                del value[key]
                continue
            if child is None:
                if root and key in ("apiVersion", "kind", "metadata"):
                    continue
                if embedded and key in ("apiVersion", "kind", "metadata"):
                    continue
                if not _preserves(schema) and additional is not True:
                    del value[key]
                    result.pruned.append(_join(path, key))
                continue
            if root and key == "metadata":
                continue
            _prune_and_default(child, value[key], _join(path, key), result)
        for key, child in props.items():
            if key not in value and "default" in child:
                value[key] = json.loads(json.dumps(child["default"]))
                _prune_and_default(child, value[key], _join(path, key), result)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune_and_default(items, item, f"{path}[{i}]", result)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    if value is None:
        return "null"
    return str(value)


def _matches_type(expected: str, value: Any) -> bool:
    actual = json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _validate(
    schema: Schema, value: Any, path: str, causes: list[Cause], root: bool = False, old: Any = None
) -> None:
    where = path or "<root>"
    if value is None:
        if not schema.get("nullable"):
            causes.append(
                cause(
                    where,
                    f'Invalid value: "null": {where} in body must be of type '
                    f'{schema.get("type", "object")}: "null"',
                )
            )
        return
    if schema.get("x-kubernetes-int-or-string") and json_type(value) not in ("integer", "string"):
        causes.append(
            cause(
                where,
                f"Invalid value: {_render(value)}: {where} in body must be of type "
                f"integer-or-string: {_render(json_type(value))}",
            )
        )
        return
    expected = schema.get("type")
    if expected and not _matches_type(expected, value):
        causes.append(
            cause(
                where,
                f"Invalid value: {_render(json_type(value))}: {where} in body must be of type {expected}: "
                f"{_render(json_type(value))}",
                "FieldValueTypeInvalid",
            )
        )
        return
    before = len(causes)
    _validate_value(schema, value, where, causes)
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            _validate_combinator(combinator, schema[combinator], value, where, causes)
    if "not" in schema:
        probe: list[Cause] = []
        _validate(schema["not"], value, path, probe)
        if not probe:
            causes.append(
                cause(where, f"Invalid value: {_render(value)}: {where} in body must not match the schema")
            )
    if len(causes) > before:
        return
    if isinstance(value, dict):
        _validate_object(schema, value, path, causes, root, old if isinstance(old, dict) else None)
    elif isinstance(value, list):
        _validate_array(schema, value, path, where, causes)
    rules = schema.get("x-kubernetes-validations")
    if rules and len(causes) == before:
        causes.extend(cel_rules.evaluate(rules, value, old, path))


def _validate_combinator(
    kind: str, options: list[Schema], value: Any, where: str, causes: list[Cause]
) -> None:
    results = []
    for option in options:
        probe: list[Cause] = []
        _validate_value_only(option, value, where, probe)
        results.append(probe)
    passed = sum(1 for r in results if not r)
    if kind == "allOf":
        for r in results:
            causes.extend(r)
    elif kind == "anyOf" and passed == 0:
        causes.append(
            cause(
                where,
                f"Invalid value: {_render(value)}: {where} in body must validate at least one schema (anyOf)",
            )
        )
    elif kind == "oneOf" and passed != 1:
        causes.append(
            cause(
                where,
                f"Invalid value: {_render(value)}: {where} in body must validate one and only "
                "one schema (oneOf)",
            )
        )


def _validate_value_only(schema: Schema, value: Any, where: str, causes: list[Cause]) -> None:
    """Value validations of a combinator branch (structural schemas keep types out of branches)."""
    expected = schema.get("type")
    if expected and not _matches_type(expected, value):
        causes.append(cause(where, f"must be of type {expected}"))
        return
    _validate_value(schema, value, where, causes)


def _validate_value(schema: Schema, value: Any, where: str, causes: list[Cause]) -> None:
    rendered = _render(value)
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_render(v) for v in schema["enum"])
        causes.append(
            cause(
                where,
                f"Unsupported value: {rendered}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        )
    if isinstance(value, str):
        _validate_string(schema, value, where, rendered, causes)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(schema, value, where, rendered, causes)
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                cause(
                    where,
                    f"Invalid value: {len(value)}: {where} in body should have at least "
                    f"{schema['minItems']} items",
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                cause(
                    where,
                    f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    "FieldValueTooMany",
                )
            )
    elif isinstance(value, dict):
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            causes.append(
                cause(
                    where,
                    f"Invalid value: {len(value)}: {where} in body should have at least "
                    f"{schema['minProperties']} properties",
                )
            )
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            causes.append(
                cause(
                    where,
                    f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                    "FieldValueTooMany",
                )
            )


def _validate_string(schema: Schema, value: str, where: str, rendered: str, causes: list[Cause]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        causes.append(
            cause(where, f"Too long: may not be more than {schema['maxLength']} bytes", "FieldValueTooLong")
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        causes.append(
            cause(
                where,
                f"Invalid value: {rendered}: {where} in body should be at least "
                f"{schema['minLength']} chars long",
            )
        )
    pattern = schema.get("pattern")
    if pattern and not _regex(pattern).search(value):
        causes.append(cause(where, f"Invalid value: {rendered}: {where} in body should match '{pattern}'"))
    fmt = schema.get("format")
    if fmt == "date-time" and not _DATE_TIME.match(value):
        causes.append(
            cause(where, f"Invalid value: {rendered}: {where} in body must be of type date-time: {rendered}")
        )


def _validate_number(schema: Schema, value: float, where: str, rendered: str, causes: list[Cause]) -> None:
    if "maximum" in schema:
        limit = schema["maximum"]
        if value > limit or (schema.get("exclusiveMaximum") and value == limit):
            word = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            causes.append(
                cause(where, f"Invalid value: {rendered}: {where} in body should be {word} {limit}")
            )
    if "minimum" in schema:
        limit = schema["minimum"]
        if value < limit or (schema.get("exclusiveMinimum") and value == limit):
            word = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            causes.append(
                cause(where, f"Invalid value: {rendered}: {where} in body should be {word} {limit}")
            )
    if "multipleOf" in schema and schema["multipleOf"] and value % schema["multipleOf"] != 0:
        causes.append(
            cause(
                where,
                f"Invalid value: {rendered}: {where} in body should be a multiple of {schema['multipleOf']}",
            )
        )
    bounds = _INT_RANGES.get(schema.get("format", ""))
    if bounds and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
        causes.append(
            cause(where, f"Invalid value: {rendered}: {where} in body should be a {schema['format']}")
        )


def _validate_object(
    schema: Schema,
    value: dict[str, Any],
    path: str,
    causes: list[Cause],
    root: bool,
    old: dict[str, Any] | None,
) -> None:
    props: dict[str, Schema] = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in value:
            causes.append(cause(_join(path, key), "Required value", "FieldValueRequired"))
    additional = schema.get("additionalProperties")
    for key, child_value in value.items():
        if root and key in ("apiVersion", "kind", "metadata"):
            continue
        child = props.get(key)
        if child is None and isinstance(additional, dict):
            child = additional
        if child is None:
            continue
        before = old.get(key, _ABSENT) if old else _ABSENT
        if before is not _ABSENT and before == child_value and not _has_transition_rules(child):
            continue  # unchanged since the stored version: ratcheted, as Kubernetes (KEP-4008) does
        _validate(child, child_value, _join(path, key), causes, old=None if before is _ABSENT else before)


_ABSENT = object()
_TRANSITIONS: dict[int, tuple[Schema, bool]] = {}  # id(schema) -> (schema, holds a transition rule)


def _has_transition_rules(schema: Schema) -> bool:
    """Whether a CEL rule that reads `oldSelf` sits anywhere in `schema` (such rules are never ratcheted:
    they judge the change itself). Cached per schema object, which the registry keeps for its lifetime."""
    known = _TRANSITIONS.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    found = any(
        "oldSelf" in str(rule.get("rule", "")) for rule in schema.get("x-kubernetes-validations") or ()
    )
    children: list[Any] = [*(schema.get("properties") or {}).values(), schema.get("additionalProperties")]
    children += [schema.get("items"), schema.get("not")]
    for combinator in ("allOf", "anyOf", "oneOf"):
        children += schema.get(combinator) or []
    found = found or any(isinstance(c, dict) and _has_transition_rules(c) for c in children)
    if len(_TRANSITIONS) >= 4096:  # schemas built on the fly must not pile up
        _TRANSITIONS.clear()
    _TRANSITIONS[id(schema)] = (schema, found)
    return found


def _validate_array(schema: Schema, value: list[Any], path: str, where: str, causes: list[Cause]) -> None:
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(items, item, f"{path}[{i}]", causes)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" or schema.get("uniqueItems"):
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                causes.append(
                    cause(f"{path}[{i}]", f"Duplicate value: {_render(item)}", "FieldValueDuplicate")
                )
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = json.dumps([item.get(k) for k in keys])
            if key in seen_keys:
                shown = ", ".join(f'"{k}"={_render(item.get(k))}' for k in keys)
                causes.append(
                    cause(
                        f"{path}[{i}]",
                        f"Duplicate value: map[string]interface {{}}{{{shown}}}",
                        "FieldValueDuplicate",
                    )
                )
            seen_keys.add(key)
