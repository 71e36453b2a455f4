"""`metadata.managedFields`, kept like the API server's field manager keeps it. Pure functions.

Each entry is one manager's set of owned fields for one (manager, operation, apiVersion for Update,
subresource). On an update (any create, PUT or non-apply PATCH), the writer takes every field it added or
changed, other managers lose those fields, and everyone loses the fields that were removed; the writer's
`time` moves only when it took some field. Server-side apply (operation Apply) owns exactly the fields of
the applied configuration: changing a field another manager owns is a 409 conflict unless forced (then that
manager loses it); fields a manager applied before and no longer applies are removed from the object when
nobody else owns them. The main endpoint of a kind with a status subresource never records `status`, and
`/status` records only `status` (with `subresource: status`). At most 10 Update entries are kept; older ones
are merged into `ancient-changes`.

The default manager of a request without `fieldManager` is its User-Agent up to the first `/`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rollout_lab.sandbox.apiserver import fieldpaths
from rollout_lab.sandbox.apiserver.fieldpaths import FieldSet, Path, Schema
from rollout_lab.sandbox.store_api import ApiError, Obj

MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"
MAX_MANAGER_LENGTH = 128


@dataclass(frozen=True)
class Entry:
    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""

    def identity(self) -> tuple[str, str, str, str]:
        # appliers keep one entry whatever apiVersion they apply with
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        """The manager as conflict messages name it."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


@dataclass(frozen=True)
class Request:
    """Who writes, how, where."""

    manager: str
    api_version: str
    time: str
    subresource: str = ""  # "" or "status"
    has_status: bool = True  # the kind has a status subresource


def manager_from_user_agent(user_agent: str) -> str:
    """The real server's default: the User-Agent before its first `/`, printable characters only, at most
    128 bytes (`kubectl/v1.31.0 (linux/amd64) kubernetes/abc` → `kubectl`)."""
    out = ""
    for char in user_agent.split("/", 1)[0]:
        if not char.isprintable():
            continue
        if len((out + char).encode()) > MAX_MANAGER_LENGTH:
            break
        out += char
    return out


def validate_manager(manager: str, options_kind: str) -> None:
    """422 like the server's ValidateFieldManager for an explicit `fieldManager`."""
    problem = ""
    if len(manager.encode()) > MAX_MANAGER_LENGTH:
        problem = f"fieldManager: Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"
    elif not manager.isprintable():
        problem = f'fieldManager: Invalid value: "{manager}": must only contain printable characters'
    if problem:
        raise ApiError(422, "Invalid", f'{options_kind}.meta.k8s.io "" is invalid: {problem}')


def decode(managed: Any) -> list[Entry]:
    entries = []
    for raw in managed if isinstance(managed, list) else []:
        if not isinstance(raw, Mapping) or (not raw.get("manager") and not raw.get("fieldsV1")):
            continue
        entries.append(
            Entry(
                manager=str(raw.get("manager") or ""),
                operation=str(raw.get("operation") or "Update"),
                api_version=str(raw.get("apiVersion") or ""),
                time=str(raw.get("time") or ""),
                fields=fieldpaths.decode(raw.get("fieldsV1")),
                subresource=str(raw.get("subresource") or ""),
            )
        )
    return entries


def encode(entries: Sequence[Entry]) -> list[Obj]:
    """managedFields as the server orders them: Apply before Update, then by time, manager, apiVersion,
    subresource."""
    ordered = sorted(entries, key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource))
    out = []
    for entry in ordered:
        raw: Obj = {
            "manager": entry.manager,
            "operation": entry.operation,
            "apiVersion": entry.api_version,
            "time": entry.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fieldpaths.encode(entry.fields),
        }
        if entry.subresource:
            raw["subresource"] = entry.subresource
        out.append(raw)
    return out


def is_reset(managed: Any) -> bool:
    """`managedFields: [{}]` in a request clears them."""
    return isinstance(managed, list) and len(managed) == 1 and managed[0] == {}


def _scope(fields: FieldSet, request: Request) -> FieldSet:
    """Drop the fields this endpoint resets: status on the main endpoint, all but status on /status."""
    if request.subresource == "status":
        return frozenset(p for p in fields if p[:1] == ("f:status",))
    if request.has_status:
        return frozenset(p for p in fields if p[:1] != ("f:status",))
    return fields


def _part(obj: Obj | None, request: Request) -> Obj | None:
    """The part of the object `_scope` keeps (so that a write compares only what it may own)."""
    if obj is None:
        return None
    if request.subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    if request.has_status and "status" in obj:
        return {k: v for k, v in obj.items() if k != "status"}
    return obj


def _without(entries: Sequence[Entry], lost: FieldSet, skip: tuple[str, str, str, str]) -> list[Entry]:
    out = []
    for entry in entries:
        kept = entry if entry.identity() == skip else replace(entry, fields=entry.fields - lost)
        if kept.fields:
            out.append(kept)
    return out


def record_update(
    entries: Sequence[Entry], old: Obj | None, new: Obj, schema: Schema | None, request: Request
) -> list[Entry]:
    """The entries after `request` turned `old` (None on create) into `new` (both without managedFields)."""
    comparison = fieldpaths.compare(_part(old, request), _part(new, request), schema)
    taken, gone = comparison.changed(), comparison.gone()
    me = Entry(request.manager, "Update", request.api_version, request.time, frozenset(), request.subresource)
    out = _without(entries, taken | gone, me.identity())
    mine = next((e for e in out if e.identity() == me.identity()), None)
    if mine is not None:
        out.remove(mine)
        me = replace(me, fields=(mine.fields - gone) | taken, time=request.time if taken else mine.time)
    else:
        me = replace(me, fields=taken)
    if me.fields:
        out.append(me)
    return _cap(out)


def _cap(entries: list[Entry]) -> list[Entry]:
    updates = sorted((e for e in entries if e.operation == "Update"), key=lambda e: e.time)
    if len(updates) <= MAX_UPDATE_MANAGERS:
        return entries
    excess = updates[: len(updates) - MAX_UPDATE_MANAGERS + 1]
    merged: FieldSet = frozenset().union(*(e.fields for e in excess))
    ancient = Entry(ANCIENT, "Update", excess[-1].api_version, excess[-1].time, merged)
    return [e for e in entries if e not in excess] + [ancient]


@dataclass(frozen=True)
class Applied:
    obj: Obj
    entries: list[Entry]


def record_apply(
    entries: Sequence[Entry],
    live: Obj | None,
    config: Obj,
    schema: Schema | None,
    request: Request,
    *,
    force: bool,
) -> Applied:
    """Server-side apply of `config` onto `live` (None: create): the new object and entries, or a 409
    Conflict naming each field another manager owns with a different value (unless `force`)."""
    me = Entry(request.manager, "Apply", request.api_version, request.time, frozenset(), request.subresource)
    applied = _scope(fieldpaths.field_set(config, schema), request)
    previous = next((e.fields for e in entries if e.identity() == me.identity()), frozenset())
    others = [e for e in entries if e.identity() != me.identity()]
    merged = merge(live or {}, config, schema)
    kept = _with_parents(applied.union(*(e.fields for e in others)))
    for path in sorted(previous - kept, key=len, reverse=True):
        _remove(merged, path, schema)
    comparison = fieldpaths.compare(live, merged, schema)
    taken = _scope(comparison.changed(), request)
    gone = _scope(comparison.gone(), request)
    conflicts = [(e, p) for e in others for p in sorted(e.fields & taken)]
    if conflicts and not force:
        raise conflict_error(conflicts)
    out = _without(others, taken | gone, me.identity())
    if applied:
        out.append(replace(me, fields=applied))
    return Applied(merged, _cap(out))


def _with_parents(fields: FieldSet) -> FieldSet:
    """The paths and every path above them (a field that holds a kept field is kept)."""
    return frozenset(path[:depth] for path in fields for depth in range(1, len(path) + 1))


def conflict_error(conflicts: Sequence[tuple[Entry, Path]]) -> ApiError:
    ordered = sorted(conflicts, key=lambda c: (c[0].manager, c[1]))
    causes = [
        {
            "type": "FieldManagerConflict",
            "message": f"conflict with {entry.describe()}",
            "field": fieldpaths.path_string(path),
        }
        for entry, path in ordered
    ]
    if len(ordered) == 1:
        entry, path = ordered[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {entry.describe()}: {fieldpaths.path_string(path)}"
        )
    else:
        lines: list[str] = []
        for describe in sorted({e.describe() for e, _ in ordered}):
            lines.append(f"conflicts with {describe}:")
            lines += [f"- {fieldpaths.path_string(p)}" for e, p in ordered if e.describe() == describe]
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def merge(live: Any, config: Any, schema: Schema | None, *, root: bool = True) -> Any:
    """The structured merge of an applied configuration onto the live object: granular objects merged by
    key, associative lists by item key, everything else (scalars, atomic lists and maps) replaced."""
    if isinstance(live, dict) and isinstance(config, dict) and fieldpaths.shape(schema, config) == "map":
        out = dict(live)
        for key, value in config.items():
            if value is None:
                continue
            child_schema, _ = fieldpaths.child_schema(schema, key, root)
            out[key] = merge(live.get(key), value, child_schema, root=False) if key in live else _copy(value)
        return out
    if isinstance(live, list) and isinstance(config, list) and fieldpaths.shape(schema, config) == "list":
        items = (schema or {}).get("items")
        by_element = {fieldpaths.item_element(schema, item): item for item in config}
        out_list = []
        for item in live:
            element = fieldpaths.item_element(schema, item)
            if element in by_element:
                out_list.append(merge(item, by_element.pop(element), items, root=False))
            else:
                out_list.append(item)
        return out_list + [_copy(item) for item in by_element.values()]
    return _copy(config)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _remove(obj: Obj, path: Path, schema: Schema | None) -> None:
    """Delete the field at `path` (a path of `fieldpaths`), if present."""
    parent: Any = obj
    parent_schema = schema
    for depth, element in enumerate(path):
        last = depth == len(path) - 1
        if element.startswith("f:") and isinstance(parent, dict):
            key = element[2:]
            if key not in parent:
                return
            if last:
                del parent[key]
                return
            parent_schema, _ = fieldpaths.child_schema(parent_schema, key, depth == 0)
            parent = parent[key]
        elif isinstance(parent, list):
            index = next(
                (
                    i
                    for i, item in enumerate(parent)
                    if fieldpaths.item_element(parent_schema, item) == element
                ),
                None,
            )
            if index is None:
                return
            if last:
                del parent[index]
                return
            parent_schema = (parent_schema or {}).get("items")
            parent = parent[index]
        else:
            return


def without_managed(obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    out = dict(obj)
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return out


def stamp(
    new: Obj,
    old: Obj | None,
    schema: Schema | None,
    request: Request,
    requested: Any = None,
    applied: Sequence[Entry] | None = None,
) -> None:
    """Write `new.metadata.managedFields` for `request` turning `old` (None on create) into `new`.
    `requested` is the managedFields the request body carried: entries there replace the live ones (as
    clients may set them), `[{}]` clears them, nothing keeps them. `applied`: the entries an apply
    computed."""
    if applied is not None:
        entries = list(applied)
    else:
        live = (old.get("metadata") or {}).get("managedFields") if old is not None else None
        if requested is not None and requested == live:
            requested = None  # a copy of the live entries (a read-modify-write): decode the live ones, cached
        start = [] if is_reset(requested) else decode(requested)
        if not start and not is_reset(requested) and old is not None:
            start = decode(live)
        entries = record_update(start, without_managed(old), without_managed(new) or {}, schema, request)
    meta = new.setdefault("metadata", {})
    meta.pop("managedFields", None)
    if entries:
        meta["managedFields"] = encode(entries)
