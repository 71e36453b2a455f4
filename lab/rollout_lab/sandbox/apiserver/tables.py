"""`meta.k8s.io/v1 Table` responses (what `kubectl get` asks for), built from printer columns."""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from rollout_lab.sandbox.apiserver import jsonpath
from rollout_lab.sandbox.apiserver.resources import PrinterColumn, ResourceSpec
from rollout_lab.sandbox.store_api import Obj

# Formats that only tell `_cell` how to render a value (not OpenAPI formats).
_RENDERERS = ("count", "objectref")
NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}
DEFAULT_AGE = PrinterColumn(
    "Age",
    "date",
    ".metadata.creationTimestamp",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def human_duration(seconds: float) -> str:
    """Kubernetes' short duration format (`kubectl get`'s AGE column)."""
    if seconds < -1:
        return "<invalid>"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def _parse_time(text: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except (ValueError, TypeError):
        return None


def columns(spec: ResourceSpec) -> list[PrinterColumn]:
    return list(spec.printer_columns) if spec.printer_columns else [DEFAULT_AGE]


def column_definitions(spec: ResourceSpec) -> list[dict[str, Any]]:
    defs: list[dict[str, Any]] = []
    cols = columns(spec)
    if not any(c.name == "Name" for c in cols):
        defs.append(dict(NAME_COLUMN))
    for col in cols:
        defs.append(
            {
                "name": col.name,
                "type": col.type,
                "format": "name" if col.name == "Name" else ("" if col.format in _RENDERERS else col.format),
                "description": col.description or col.name,
                "priority": col.priority,
            }
        )
    return defs


def _cell(col: PrinterColumn, obj: Obj, now: float) -> Any:
    values = jsonpath.find(col.json_path, obj)
    if col.format == "count":
        return sum(len(v) for v in values if isinstance(v, dict | list))
    if not values:
        return None
    if col.format == "objectref":
        ref = values[0] if isinstance(values[0], dict) else {}
        return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"
    value = values[0] if len(values) == 1 else " ".join(_text(v) for v in values)
    if col.type == "date":
        stamp = _parse_time(value) if isinstance(value, str) else None
        return human_duration(now - stamp) if stamp is not None else None
    if col.type == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else _text(value)
    if col.type == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else _text(value)
    if col.type == "boolean":
        return value if isinstance(value, bool) else _text(value)
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def partial_metadata(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def row(spec: ResourceSpec, obj: Obj, include_object: str, now: float) -> Obj:
    cols = columns(spec)
    cells: list[Any] = [] if any(c.name == "Name" for c in cols) else [obj["metadata"]["name"]]
    cells.extend(_cell(c, obj, now) for c in cols)
    out: Obj = {"cells": cells}
    if include_object == "Object":
        out["object"] = obj
    elif include_object != "None":
        out["object"] = partial_metadata(obj)
    return out


def table(
    spec: ResourceSpec,
    objs: Iterable[Obj],
    list_meta: Obj,
    include_object: str = "Metadata",
    clock: Callable[[], float] = time.time,
) -> Obj:
    now = clock()
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(spec),
        "rows": [row(spec, o, include_object, now) for o in objs],
    }
