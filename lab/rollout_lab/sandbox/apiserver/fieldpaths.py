"""Field sets as the API server's field manager (structured-merge-diff) computes them, guided by a resource's
OpenAPI schema. Pure functions.

A field set is a set of paths; a path is a tuple of path elements encoded as in `metadata.managedFields`:
`f:<field>` (a field of an object), `k:<json>` (an item of a list-type=map list, by its keys), `v:<json>` (an
item of a list-type=set list). Lists without `x-kubernetes-list-type` are atomic (the schema converter's
default, so a Knative Service's `spec.traffic` is owned as one field, `f:traffic`), as are maps with
`x-kubernetes-map-type: atomic`; their paths have no children. Fields outside any schema (preserved unknown
fields) are "deduced": objects are granular, lists atomic.

- `field_set(obj)`: the fields an applied configuration sets (ToFieldSet): every scalar and atomic value,
  every list item, every null or empty object, and every key of a map that is not a declared property.
- `compare(old, new)`: the paths added, removed and modified between two versions (Compare), at every
  level: an object that appears is added with all that is inside it.
- `encode` / `decode`: the FieldsV1 JSON (a path that is itself in the set and has children is marked `.`).
- `path_string`: a path as conflict messages show it (`.spec.traffic`, `.metadata.ownerReferences[uid="…"]`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Schema = Mapping[str, Any]
Path = tuple[str, ...]
FieldSet = frozenset[Path]

# metadata as the server types it (ObjectMeta): what is not listed here is a scalar
_META: Schema = {
    "type": "object",
    "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-map-type": "atomic"},
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
        },
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
}
# always owned by the system: never part of a manager's set (the field manager's stripMeta)
STRIPPED: FieldSet = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        *(
            ("f:metadata", f"f:{name}")
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        ),
    }
)
_EMPTY: Schema = {}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class _Node:
    """How a schema node is walked: "scalar", "atomic", "map" (granular object) or "list" (associative)."""

    shape: str
    schema: Schema = field(default_factory=dict)


def shape(schema: Schema | None, value: Any) -> str:
    if isinstance(value, dict):
        if schema and schema.get("x-kubernetes-map-type") == "atomic":
            return "atomic"
        return "map"
    if isinstance(value, list):
        list_type = (schema or {}).get("x-kubernetes-list-type")
        return "list" if list_type in ("set", "map") else "atomic"
    return "scalar"


def child_schema(schema: Schema | None, key: str, root: bool) -> tuple[Schema | None, bool]:
    """The schema of `key` inside an object schema, and whether `key` is a declared property."""
    if root and key == "metadata":
        return _META, True
    if not schema:
        return None, False
    properties = schema.get("properties") or {}
    if key in properties:
        return properties[key], True
    additional = schema.get("additionalProperties")
    return (additional if isinstance(additional, dict) else None), False


def item_element(schema: Schema | None, item: Any) -> str:
    schema = schema or {}
    if schema.get("x-kubernetes-list-type") == "map" and isinstance(item, dict):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        return "k:" + _json({k: item[k] for k in keys if k in item})
    return "v:" + _json(item)


def _items(schema: Schema | None, value: list[Any]) -> dict[str, Any]:
    return {item_element(schema, item): item for item in value}


def _children(schema: Schema | None, value: Any, root: bool) -> dict[str, tuple[Any, Schema | None, bool]]:
    """element -> (child value, child schema, declared) for a granular map or an associative list."""
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            sub, declared = child_schema(schema, key, root)
            out["f:" + key] = (child, sub, declared)
        return out
    item_schema = (schema or {}).get("items")
    return {element: (item, item_schema, True) for element, item in _items(schema, value).items()}


def field_set(obj: Mapping[str, Any], schema: Schema | None) -> FieldSet:
    """The fields a configuration sets (see the module docstring), system fields stripped."""
    out: set[Path] = set()
    _collect(dict(obj), schema, (), out, root=True)
    return frozenset(out) - STRIPPED


def _collect(value: Any, schema: Schema | None, path: Path, out: set[Path], *, root: bool = False) -> None:
    found = shape(schema, value)
    if found in ("scalar", "atomic"):
        out.add(path)
        return
    is_list = found == "list"
    for element, (child, sub, declared) in _children(schema, value, root).items():
        child_path = (*path, element)
        _collect(child, sub, child_path, out)
        if is_list or child is None or (isinstance(child, dict) and not child) or not declared:
            out.add(child_path)


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)

    def changed(self) -> FieldSet:
        """Added or modified: what the writer takes over."""
        return frozenset(self.added | self.modified) - STRIPPED

    def gone(self) -> FieldSet:
        return frozenset(self.removed) - STRIPPED


_ABSENT = object()


def compare(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, schema: Schema | None
) -> Comparison:
    """The paths added, removed and modified from `old` to `new` (None: no object)."""
    result = Comparison()
    _compare(
        dict(old) if old is not None else _ABSENT,
        dict(new) if new is not None else _ABSENT,
        schema,
        (),
        result,
        root=True,
    )
    for found in (result.added, result.removed, result.modified):
        found.discard(())
    return result


def _compare(
    old: Any, new: Any, schema: Schema | None, path: Path, out: Comparison, *, root: bool = False
) -> None:
    if old is not _ABSENT and new is not _ABSENT and old == new:
        return  # nothing below changed either
    present = new if new is not _ABSENT else old
    found = shape(schema, present)
    if old is not _ABSENT and new is not _ABSENT and shape(schema, old) != found:
        found = "scalar"  # the type changed: one leaf replaced by another
    leaf = found in ("scalar", "atomic")
    if old is _ABSENT:
        out.added.add(path)
    elif new is _ABSENT:
        out.removed.add(path)
    elif leaf and old != new:
        out.modified.add(path)
    if leaf:
        return
    before = _children(schema, old, root) if old is not _ABSENT else {}
    after = _children(schema, new, root) if new is not _ABSENT else {}
    for element in {**before, **after}:
        child_old = before[element][0] if element in before else _ABSENT
        child_new = after[element][0] if element in after else _ABSENT
        sub = (after.get(element) or before[element])[1]
        _compare(child_old, child_new, sub, (*path, element), out)


def _element_order(element: str) -> tuple[int, str]:
    return ("fkvi".find(element[0]), element)


# Stored objects are never mutated, so the FieldsV1 of a field set can be shared between them, and the
# field set of a FieldsV1 object we encoded is known (keyed by identity; the object is kept alive with it).
_ENCODED: dict[FieldSet, dict[str, Any]] = {}
_DECODED: dict[int, tuple[Any, FieldSet]] = {}
_CACHE_LIMIT = 50_000


def encode(paths: Iterable[Path]) -> dict[str, Any]:
    """FieldsV1 JSON of a field set (shared: do not mutate it)."""
    key = frozenset(paths)
    found = _ENCODED.get(key)
    if found is None:
        if len(_ENCODED) > _CACHE_LIMIT:
            _ENCODED.clear()
            _DECODED.clear()
        found = _ENCODED[key] = _encode(key)
        _DECODED[id(found)] = (found, key)
    return found


def _encode(paths: Iterable[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    members: set[Path] = set()
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        members.add(path)
    return _render(tree, (), members)


def _render(node: dict[str, Any], path: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if path and node and path in members:
        out["."] = {}
    for element in sorted(node, key=_element_order):
        out[element] = _render(node[element], (*path, element), members)
    return out


def decode(fields: Any) -> FieldSet:
    """The field set a FieldsV1 JSON object holds (unknown shapes are ignored)."""
    known = _DECODED.get(id(fields))
    if known is not None and known[0] is fields:
        return known[1]
    return _decode(fields)


def _decode(fields: Any, prefix: Path = ()) -> FieldSet:
    out: set[Path] = set()
    if isinstance(fields, Mapping):
        for element, child in fields.items():
            if element == ".":
                if prefix:
                    out.add(prefix)
                continue
            path = (*prefix, str(element))
            if not isinstance(child, Mapping) or not child:
                out.add(path)
            else:
                out |= _decode(child, path)
    return frozenset(out)


def path_string(path: Path) -> str:
    """`.spec.traffic`, `.metadata.labels.app`, `.metadata.ownerReferences[uid="x"]`, `.metadata.finalizers[="f"]`."""
    out = ""
    for element in path:
        kind, text = element[:2], element[2:]
        if kind == "f:":
            out += "." + text
        elif kind == "k:":
            try:
                keys = json.loads(text)
                out += "[" + ",".join(f"{k}={_json(v)}" for k, v in sorted(keys.items())) + "]"
            except (ValueError, AttributeError):
                out += f"[{text}]"
        elif kind == "v:":
            out += f"[={text}]"
        else:
            out += f"[{text}]"
    return out
