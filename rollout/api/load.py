"""Parse what users wrote into API models, turning validation errors into problems that name the field and say
how to fix it. Used by `rollout lint`, the controller (an invalid policy never touches traffic) and tests."""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rollout.api.durations import WIRE
from rollout.api.policy import RolloutPolicy, RolloutPolicySpec
from rollout.api.rollout import Rollout
from rollout.api.source import ClusterMetricSourceSpec

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FieldProblem:
    path: str  # e.g. spec.analysis.metrics[0].threshold.max
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" + (f" ({self.hint})" if self.hint else "")


def format_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _unwrap(annotation: Any) -> list[Any]:
    """Model classes reachable from a field annotation (through Optional, list, dict, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, dict):
        found: list[Any] = []
        for arg in typing.get_args(annotation):
            found.extend(_unwrap(arg))
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        by_alias = {(f.alias or n): f for n, f in current.model_fields.items()}
        field = by_alias.get(part) or current.model_fields.get(part)
        if field is None:
            return None
        models = _unwrap(field.annotation)
        current = models[0] if models else None
    return current


def _allowed_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _problem(root: type[BaseModel], err: ErrorDetails, prefix: Sequence[str]) -> FieldProblem:
    loc = list(err["loc"])
    kind = err["type"]
    if kind == "field_error":  # rollout.api.common.field_error: located below the raising model
        ctx = err.get("ctx", {})
        return FieldProblem(format_path([*prefix, *loc, *ctx.get("at", ())]), err["msg"], ctx.get("hint", ""))
    path = format_path([*prefix, *loc])
    given = err.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        parent = _model_at(root, loc[:-1])
        allowed = _allowed_names(parent) if parent else []
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        hint = (
            f"did you mean `{close[0]}`?"
            if close
            else (f"allowed fields here: {', '.join(allowed)}" if allowed else "remove it")
        )
        return FieldProblem(path, f"unknown field `{name}`", hint)
    if kind == "missing":
        return FieldProblem(path, "required field is missing", "add it")
    if kind in ("enum", "literal_error"):
        expected = err.get("ctx", {}).get("expected", "")
        return FieldProblem(path, f"{given!r} is not allowed", f"use one of {expected}")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return FieldProblem(path, f"expected a whole number, got {given!r}", "write an integer such as 10")
    if kind in ("float_type", "float_parsing"):
        return FieldProblem(path, f"expected a number, got {given!r}", "write a number such as 0.05")
    if kind in ("bool_type", "bool_parsing"):
        return FieldProblem(path, f"expected true or false, got {given!r}")
    if kind in ("string_type",):
        return FieldProblem(path, f"expected a string, got {type(given).__name__}", "quote the value")
    if kind in ("list_type",):
        return FieldProblem(
            path, f"expected a list, got {type(given).__name__}", "write a YAML list (- item)"
        )
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return FieldProblem(path, f"expected a mapping, got {type(given).__name__}", "write key: value pairs")
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return FieldProblem(path, f"{given!r} does not match the required format", f"pattern {pattern}")
    if kind == "value_error":
        msg = err["msg"].removeprefix("Value error, ")
        return FieldProblem(path, msg)
    if kind == "assertion_error":
        return FieldProblem(path, err["msg"].removeprefix("Assertion failed, "))
    return FieldProblem(path, err["msg"])


def problems_from(
    root: type[BaseModel], exc: ValidationError, prefix: Sequence[str] = ()
) -> list[FieldProblem]:
    return [_problem(root, e, prefix) for e in exc.errors(include_url=False)]


def _json_value(value: Any) -> Any:
    """What kubectl sends for a YAML value JSON has no type for (a timestamp): its text."""
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _as_decoded(value: Any) -> Any:
    """The API server decodes a whole JSON number such as `10.0` as an integer (then `type: integer`
    accepts it); so do we."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _as_decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_decoded(v) for v in value]
    return value


def parse(
    model: type[M], data: Any, prefix: Sequence[str] = (), *, strict: bool = False
) -> tuple[M | None, list[FieldProblem]]:
    """Validate user-written data (durations must carry units, unknown fields are errors). `strict`: JSON
    types as the API server checks them (`weight: "10"` or `weight: false` is not a number), for what a user
    writes by hand, so that lint never passes what the cluster refuses; objects read from the cluster passed
    the API server already."""
    try:
        if strict:
            text = json.dumps(_as_decoded(data), default=_json_value)
            return model.model_validate_json(text, strict=True, context={WIRE: True}), []
        return model.model_validate(data, context={WIRE: True}), []
    except ValidationError as exc:
        return None, problems_from(model, exc, prefix)


# The fields of a stored object the API models read; others the API server adds are left out.
TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")


def object_body(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object's top-level fields the API models read (a shallow copy)."""
    return {k: v for k, v in obj.items() if k in TOP_LEVEL_FIELDS}


def parse_policy(obj: Mapping[str, Any]) -> tuple[RolloutPolicy | None, list[FieldProblem]]:
    """A whole RolloutPolicy object as stored in the cluster or in git (metadata and status tolerated)."""
    return parse(RolloutPolicy, object_body(obj), strict=True)


def parse_policy_spec(spec: Any) -> tuple[RolloutPolicySpec | None, list[FieldProblem]]:
    return parse(RolloutPolicySpec, spec, prefix=("spec",), strict=True)


def parse_cluster_source(obj: Mapping[str, Any]) -> tuple[ClusterMetricSourceSpec | None, list[FieldProblem]]:
    """The spec of a stored ClusterMetricSource (admin-written, cluster-scoped)."""
    return parse(ClusterMetricSourceSpec, obj.get("spec") or {}, prefix=("spec",), strict=True)


def parse_rollout(obj: Mapping[str, Any]) -> tuple[Rollout | None, list[FieldProblem]]:
    return parse(Rollout, object_body(obj))


def policy_hash(spec: RolloutPolicySpec) -> str:
    """Stable hash of a resolved policy spec (sha256 of its canonical JSON)."""
    canonical = json.dumps(spec.to_wire(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
