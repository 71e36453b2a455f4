"""A tiny vocabulary for writing structural OpenAPI v3 schemas in Python (used by the built-in and Knative
kinds' schemas)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY = rf"^(\+|-)?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUMBER}))?$"


def obj(required: tuple[str, ...] = (), /, **props: Schema) -> Schema:
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def atomic(schema: Schema) -> Schema:
    return {**schema, "x-kubernetes-map-type": "atomic"}


def arr(items: Schema, list_type: str | None = None, keys: tuple[str, ...] = ()) -> Schema:
    out: Schema = {"type": "array", "items": items}
    if list_type:
        out["x-kubernetes-list-type"] = list_type
    if keys:
        out["x-kubernetes-list-map-keys"] = list(keys)
    return out


def string(default: str | None = None) -> Schema:
    return {"type": "string"} if default is None else {"type": "string", "default": default}


def integer(fmt: str = "int32") -> Schema:
    return {"type": "integer", "format": fmt}


BOOL: Schema = {"type": "boolean"}
STR: Schema = string()
STRINGS: Schema = arr(STR, "atomic")
STRING_MAP: Schema = {"type": "object", "additionalProperties": STR}
ANY_OBJECT: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
INT_OR_STRING: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
QUANTITY_SCHEMA: Schema = {**INT_OR_STRING, "pattern": QUANTITY}
