"""`MemoryStore`: the in-memory object store behind the sandbox API server (implements `ObjectStore`).

It holds the semantics of the real API server's registry: one global resourceVersion counter (strings),
uid, creationTimestamp, generateName, generation bumped only by spec changes, the status subresource,
optimistic concurrency (409 Conflict), AlreadyExists/NotFound, finalizers and deletionTimestamp, owner
references (a synchronous garbage collector with background/foreground/orphan propagation), namespace
lifecycle, admission hooks, and watches replayed from a bounded per-resource event log (410 Expired).

Single-threaded (asyncio): every write is one synchronous call; stored objects are never mutated after they
are committed, so reads hand out copies and watch events share the stored object.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from rollout_lab.sandbox.apiserver import kinds, managedfields
from rollout_lab.sandbox.apiserver.catalog import default_registry
from rollout_lab.sandbox.apiserver.eventlog import LogEntry, Predicate, ResourceLog, StoredType, Watcher
from rollout_lab.sandbox.apiserver.objects import (
    OPTIMISTIC_LOCK,
    already_exists,
    check_type,
    clone,
    conflict,
    copy_obj,
    meta_of,
    not_found,
    rfc3339,
)
from rollout_lab.sandbox.apiserver.resources import Cause, ResourceRegistry, ResourceSpec
from rollout_lab.sandbox.apiserver.schema import SchemaResult, apply_schema
from rollout_lab.sandbox.apiserver.selectors import (
    check_fields_supported,
    object_fields,
    parse_field_selector,
    parse_label_selector,
)
from rollout_lab.sandbox.apiserver.validation import invalid, required, validate_metadata
from rollout_lab.sandbox.store_api import Admission, ApiError, Obj, Operation, ResourceType, WatchEvent

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
ObjList = list[Obj]
WatcherList = list[Watcher]
Warnings = list[str]
CommitListener = Callable[[ResourceType, LogEntry], None]
DEFAULT_MANAGER = "sandbox"  # managedFields manager of in-process writes that name none
GC_MANAGER = "kube-controller-manager"  # the garbage collector's writes (orphaning, finalizers)


def _same(obj: Obj) -> Obj:
    return obj


class MemoryStore:
    """The object store; see the module docstring. `clock` gives wall-clock seconds for timestamps."""

    def __init__(
        self,
        registry: ResourceRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
        log_capacity: int = 10_000,
        watch_queue_limit: int = 100_000,
        namespaces: tuple[str, ...] = kinds.DEFAULT_NAMESPACES,
        require_namespace: bool = True,
        default_manager: str = DEFAULT_MANAGER,
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
        self.clock = clock
        self.log_capacity = log_capacity
        self.watch_queue_limit = watch_queue_limit
        self.require_namespace = require_namespace
        self._rv = 0
        self._types: dict[str, ResourceType] = {}
        # group_resource -> namespace ("" when cluster-scoped) -> name -> stored object
        self._buckets: dict[str, dict[str, dict[str, Obj]]] = {}
        self._logs: dict[str, ResourceLog] = {}
        self._admissions: dict[str, list[Admission]] = {}
        self._listeners: dict[str, list[CommitListener]] = {}
        self._uids: dict[str, tuple[str, str, str]] = {}
        self._dependents: dict[str, set[tuple[str, str, str]]] = {}
        self._random = random.Random()
        self.default_manager = default_manager
        for ns in namespaces:
            self.create(kinds.NAMESPACES, {"metadata": {"name": ns}})
        from rollout_lab.sandbox.apiserver.crds import CrdController

        # Applying a CustomResourceDefinition serves its kind, as in a cluster.
        self.crds = CrdController(self)

    # ------------------------------------------------------------------ hooks

    def register_admission(self, rt: ResourceType, admission: Admission) -> None:
        """Run `admission` on every create/update/delete of `rt`, in registration order, before persisting."""
        self._admissions.setdefault(rt.group_resource, []).append(admission)

    def unregister_admission(self, rt: ResourceType, admission: Admission) -> None:
        hooks = self._admissions.get(rt.group_resource, [])
        if admission in hooks:
            hooks.remove(admission)

    def on_commit(self, rt: ResourceType, listener: CommitListener) -> None:
        """Call `listener` synchronously after each committed write of `rt` (it may write in turn)."""
        self._listeners.setdefault(rt.group_resource, []).append(listener)

    # ------------------------------------------------------------------ reads

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        found = self._stored(rt, namespace, name)
        return copy_obj(found) if found is not None else None

    def find_stored(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """The stored object itself (read-only!), or None."""
        return self._stored(rt, namespace, name)

    def get_stored(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        """The stored object itself (read-only!) or 404 NotFound."""
        found = self._stored(rt, namespace, name)
        if found is None:
            raise not_found(rt, name)
        return found

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        *,
        field_selector: str | None = None,
    ) -> tuple[ObjList, str]:
        items = self.list_stored(rt, namespace, self.selector_predicate(rt, label_selector, field_selector))
        return [copy_obj(o) for o in items], self.resource_version

    def list_stored(self, rt: ResourceType, namespace: str | None, predicate: Predicate | None) -> ObjList:
        """Stored objects (read-only!) ordered by namespace then name, as etcd returns them."""
        bucket = self._buckets.get(rt.group_resource, {})
        scopes = [namespace] if namespace else sorted(bucket)
        out: ObjList = []
        for ns in scopes:
            objs = bucket.get(ns or "", {})
            for name in sorted(objs):
                obj = objs[name]
                if predicate is None or predicate(obj):
                    out.append(obj)
        return out

    def selector_predicate(
        self, rt: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> Predicate | None:
        """A predicate for label and field selectors (None when both are empty); 400 when malformed."""
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        spec = self.registry.spec(rt)
        check_fields_supported(fields, spec.supported_fields, rt.kind)
        if not labels.requirements and not fields.requirements:
            return None
        paths = spec.field_paths

        def predicate(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            if labels.requirements and not labels.matches(meta.get("labels")):
                return False
            return not fields.requirements or fields.matches(object_fields(obj, paths))

        return predicate

    def namespaces_in_use(self, rt: ResourceType) -> tuple[str, ...]:
        return tuple(sorted(self._buckets.get(rt.group_resource, {})))

    # ------------------------------------------------------------------ writes

    def create(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        dry_run: bool = False,
        field_validation: str = "Ignore",
        warnings: Warnings | None = None,
        field_manager: str | None = None,
        applied: Sequence[managedfields.Entry] | None = None,
    ) -> Obj:
        """Create an object (POST). Unknown fields of schema-checked kinds are pruned; with
        `field_validation` "Warn" they are reported in `warnings`, with "Strict" they are a 400.
        The write is recorded in managedFields under `field_manager` (in-process writers without one:
        `default_manager`); `applied` are the entries a server-side apply computed."""
        spec = self.registry.spec(rt)
        new: Obj = copy_obj(obj)
        check_type(rt, new)
        meta = meta_of(new)
        ns = self._scope(rt, meta)
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        if self.require_namespace and rt.namespaced:
            self._check_namespace_open(ns)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                why = "Required value: name or generateName is required"
                raise invalid(rt, "", [required("metadata.name", why)])
            meta["name"] = self._generate_name(rt, ns, str(prefix))
        requested = meta.pop("managedFields", None)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.clock())
        if spec.uses_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.has_status and not spec.builtin:
            new.pop("status", None)
        new = self._check_and_admit(
            spec, "CREATE", new, None, field_validation=field_validation, warnings=warnings
        )
        # As in the real server, validation and admission answer before storage finds a duplicate.
        name = str(new["metadata"]["name"])
        if self._stored(rt, ns, name) is not None:
            raise already_exists(rt, name)
        self._stamp(spec, new, None, field_manager, None, requested, applied)
        if dry_run:
            return copy_obj(new)
        return copy_obj(self._commit(rt, "ADDED", new, None))

    def update(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        subresource: str | None = None,
        require_resource_version: bool = False,
        dry_run: bool = False,
        field_validation: str = "Ignore",
        warnings: Warnings | None = None,
        field_manager: str | None = None,
        applied: Sequence[managedfields.Entry] | None = None,
        owned: bool = False,
        copy_result: bool = True,
    ) -> Obj:
        """Replace an object (PUT). With `subresource="status"` only `.status` changes; otherwise `.status`
        is kept when the resource has a status subresource. A resourceVersion is a precondition (409);
        `require_resource_version` makes its absence an error (custom resources over REST).
        `owned`: `obj` is the caller's to give away (e.g. just decoded), so it is stored without a copy;
        `copy_result=False`: the answer is the stored object itself, read-only (to serialize at once)."""
        spec = self.registry.spec(rt)
        # a status write takes only .status (copied below) from the request
        if subresource == "status":
            new: Obj = {**obj, "metadata": dict(meta_of(obj))}
        else:
            new = obj if owned else copy_obj(obj)
        check_type(rt, new)
        meta = meta_of(new)
        ns = self._scope(rt, meta)
        name = str(meta.get("name") or "")
        if not name:
            raise invalid(rt, "", [required("metadata.name", "Required value: name is required")])
        old = self._stored(rt, ns, name)
        if old is None:
            raise not_found(rt, name)
        old_meta = old["metadata"]
        given_rv = meta.get("resourceVersion")
        if given_rv:
            if str(given_rv) != old_meta["resourceVersion"]:
                raise conflict(rt, name, OPTIMISTIC_LOCK)
        elif require_resource_version:
            raise invalid(
                rt,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "metadata.resourceVersion",
                        "message": "Invalid value: 0x0: must be specified for an update",
                    }
                ],
            )
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise invalid(
                rt,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "metadata.uid",
                        "message": f'Invalid value: "{meta["uid"]}": field is immutable',
                    }
                ],
            )
        if subresource == "status":
            new = _with_status_of(old, new, share=_status_only_schema(spec))
            meta = new["metadata"]
        elif subresource is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        elif rt.has_status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        requested = meta.pop("managedFields", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if spec.uses_generation:
            generation = int(old_meta.get("generation", 1))
            if subresource is None and _content(new, rt.has_status) != _content(old, rt.has_status):
                generation += 1
            meta["generation"] = generation
        else:
            meta.pop("generation", None)
        new = self._check_and_admit(
            spec,
            "UPDATE",
            new,
            old,
            field_validation=field_validation,
            warnings=warnings,
            status_only=subresource == "status",
        )
        self._stamp(spec, new, old, field_manager, subresource, requested, applied)
        answer = copy_obj if copy_result else _same
        if new == old:
            return answer(old)  # a no-op update writes nothing, as in the real server
        if dry_run:
            return answer(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return answer(self._remove(rt, new))
        return answer(self._commit(rt, "MODIFIED", new, old))

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> Obj | None:
        """Delete an object: None when it is gone, or the object still present (deletionTimestamp set)
        while finalizers are pending. 404 when missing; `uid`/`resource_version` are preconditions (409)."""
        obj, gone = self.delete_object(
            rt,
            namespace,
            name,
            uid=uid,
            resource_version=resource_version,
            propagation=propagation,
            dry_run=dry_run,
        )
        return None if gone else obj

    def delete_object(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Like `delete`, returning (last state of the object, whether it is gone)."""
        spec = self.registry.spec(rt)
        old = self._stored(rt, namespace, name)
        if old is None:
            raise not_found(rt, name)
        old_meta = old["metadata"]
        if uid is not None and uid != old_meta["uid"]:
            raise conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old_meta['uid']}",
            )
        if resource_version is not None and resource_version != old_meta["resourceVersion"]:
            raise conflict(
                rt,
                name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{resource_version}, ResourceVersion in object meta: "
                f"{old_meta['resourceVersion']}",
            )
        if propagation not in (None, "Background", "Foreground", "Orphan"):
            raise ApiError(
                422,
                "Invalid",
                f'propagationPolicy: Unsupported value: "{propagation}": supported '
                'values: "Foreground", "Background", "Orphan"',
            )
        for hook in self._admissions.get(rt.group_resource, []):
            hook.admit(rt, "DELETE", copy_obj(old), copy_obj(old))
        if dry_run:
            return copy_obj(old), False
        finalizers = list(old_meta.get("finalizers") or [])
        extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(propagation or "")
        if extra and extra not in finalizers and not old_meta.get("deletionTimestamp"):
            finalizers.append(extra)
        if rt == kinds.NAMESPACES:
            return self._delete_namespace(old)
        if not finalizers:
            return copy_obj(self._remove(rt, old)), True
        if not old_meta.get("deletionTimestamp") or finalizers != list(old_meta.get("finalizers") or []):
            new = copy_obj(old)
            meta = new["metadata"]
            meta["finalizers"] = finalizers
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = rfc3339(self.clock())
                meta["deletionGracePeriodSeconds"] = 0
                if spec.uses_generation:
                    meta["generation"] = int(meta.get("generation", 1)) + 1
            old = self._commit(rt, "MODIFIED", new, old)
            self._collect_garbage_for(rt, old)
        current = self._stored(rt, namespace, name)
        return copy_obj(current if current is not None else old), current is None

    # ------------------------------------------------------------------ watch

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        resource_version: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Events of `rt` after `resource_version` (replayed from the log), or — when it is None, "" or "0"
        — synthetic ADDED events for the current objects followed by live events. Errors (410 Expired,
        400 for a bad selector) are raised on the first iteration."""
        try:
            watcher: Watcher | ApiError = self.open_watcher(
                rt, namespace, resource_version, label_selector=label_selector, field_selector=field_selector
            )
        except ApiError as err:
            watcher = err
        return _StoreWatch(watcher)

    def open_watcher(
        self,
        rt: ResourceType,
        namespace: str | None,
        resource_version: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Watcher:
        """Open a watcher (the REST layer's entry point); raises ApiError (400, 410) at once."""
        predicate = self.selector_predicate(rt, label_selector, field_selector)
        pinned = parse_field_selector(field_selector)
        name = pinned.exact("metadata.name")
        namespace = namespace or pinned.exact("metadata.namespace") or None
        log = self._log(rt)
        watcher = Watcher(log, namespace, name, predicate, self.watch_queue_limit)
        if resource_version in (None, "", "0"):
            current = self.list_stored(rt, namespace, predicate)
            watcher.preload(
                [
                    ("ADDED", LogEntry(int(o["metadata"]["resourceVersion"]), "ADDED", o, None))
                    for o in current
                    if name is None or o["metadata"]["name"] == name
                ]
            )
        else:
            start = parse_resource_version(resource_version)
            log.check_not_expired(start)
            for entry in log.since(start):
                watcher.offer(entry)
        log.attach(watcher)
        return watcher

    def expire_events(self, rt: ResourceType | None = None, upto: int | None = None) -> None:
        """Drop logged events up to `upto` (default: all so far) so older watches get 410 Expired."""
        limit = self._rv if upto is None else upto
        for gr, log in self._logs.items():
            if rt is None or gr == rt.group_resource:
                log.expire(limit)

    def watchers(self, rt: ResourceType | None = None) -> WatcherList:
        out: WatcherList = []
        for gr, log in self._logs.items():
            if rt is None or gr == rt.group_resource:
                out.extend(log.watchers())
        return out

    # ------------------------------------------------------------------ internals

    def _stamp(
        self,
        spec: ResourceSpec,
        new: Obj,
        old: Obj | None,
        field_manager: str | None,
        subresource: str | None,
        requested: Any,
        applied: Sequence[managedfields.Entry] | None,
    ) -> None:
        request = managedfields.Request(
            manager=self.default_manager if field_manager is None else field_manager,
            api_version=spec.rt.api_version,
            time=rfc3339(self.clock()),
            subresource=subresource or "",
            has_status=spec.rt.has_status,
        )
        managedfields.stamp(new, old, spec.schema, request, requested, applied)

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        bucket = self._buckets.get(rt.group_resource)
        if bucket is None:
            return None
        objs = bucket.get((namespace or "") if rt.namespaced else "")
        return objs.get(name) if objs else None

    def _scope(self, rt: ResourceType, meta: dict[str, Any]) -> str:
        if rt.namespaced:
            ns = meta.get("namespace")
            if not ns:
                raise ApiError(400, "BadRequest", "the namespace of the object must be set")
            return str(ns)
        meta.pop("namespace", None)
        return ""

    def _log(self, rt: ResourceType) -> ResourceLog:
        gr = rt.group_resource
        log = self._logs.get(gr)
        if log is None:
            # No event of this resource happened before its log exists, so the log is complete.
            log = self._logs[gr] = ResourceLog(self.log_capacity)
        self._types.setdefault(gr, rt)
        return log

    def _check_namespace_open(self, ns: str) -> None:
        nsobj = self._stored(kinds.NAMESPACES, None, ns)
        if nsobj is None:
            raise not_found(kinds.NAMESPACES, ns)
        if nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {ns} because it is being terminated",
                {"name": ns, "kind": "namespaces"},
            )

    def _generate_name(self, rt: ResourceType, ns: str, prefix: str) -> str:
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        for _ in range(8):
            name = base + "".join(self._random.choice(_NAME_CHARS) for _ in range(5))
            if self._stored(rt, ns, name) is None:
                return name
        raise already_exists(rt, base)

    def _check_and_admit(
        self,
        spec: ResourceSpec,
        op: Operation,
        new: Obj,
        old: Obj | None,
        *,
        field_validation: str = "Ignore",
        warnings: Warnings | None = None,
        status_only: bool = False,
    ) -> Obj:
        """Server-side defaults, schema (prune, default, validate), then admission hooks, then validation
        again when a hook ran (a hook's defaults must be valid too). `status_only`: a status write, whose
        other fields are the stored object's, so only its status goes through the schema (unchanged fields
        are not validated again, like the server's validation ratcheting) and no hook sees it."""
        if spec.prepare is not None:
            spec.prepare(new, old)
        self._validate(
            spec, new, old, field_validation=field_validation, warnings=warnings, status_only=status_only
        )
        # Knative's webhooks elide their checks on status updates ("the metadata and spec cannot change",
        # apis.IsInStatusUpdate), so a status write is not sent to the hooks
        hooks: Sequence[Admission] = () if status_only else self._admissions.get(spec.rt.group_resource, ())
        for hook in hooks:
            new = hook.admit(spec.rt, op, new, old)  # `old` read-only, as the protocol says
        if hooks:
            self._validate(spec, new, old)
        return new

    def _validate(
        self,
        spec: ResourceSpec,
        new: Obj,
        old: Obj | None,
        *,
        field_validation: str = "Ignore",
        warnings: Warnings | None = None,
        status_only: bool = False,
    ) -> None:
        causes: list[Cause] = []
        if spec.schema is not None:
            if status_only:
                result = _apply_status_schema(spec.schema, new, old)
            else:
                result = apply_schema(spec.schema, new, old)
            causes.extend(result.causes)
            unknown = [f'unknown field "{path}"' for path in result.pruned]
            if unknown and field_validation == "Strict":
                raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(unknown))
            if unknown and field_validation == "Warn" and warnings is not None:
                warnings.extend(unknown)
        causes.extend(validate_metadata(spec, new, old))
        if spec.validate is not None:
            causes.extend(spec.validate(new, old))
        if causes:
            raise invalid(spec.rt, str(new["metadata"].get("name", "")), causes)

    def _commit(self, rt: ResourceType, type_: StoredType, new: Obj, old: Obj | None) -> Obj:
        self._rv += 1
        gr = rt.group_resource
        log = self._log(rt)
        meta = new["metadata"]
        meta["resourceVersion"] = str(self._rv)
        ns = meta.get("namespace", "")
        name = meta["name"]
        bucket = self._buckets.setdefault(gr, {})
        if old is not None:
            self._unindex(old)
        if type_ == "DELETED":
            objs = bucket.get(ns, {})
            objs.pop(name, None)
            if not objs:
                bucket.pop(ns, None)
        else:
            bucket.setdefault(ns, {})[name] = new
            self._index(gr, new)
        entry = LogEntry(self._rv, type_, new, old)
        log.append(entry)
        for listener in list(self._listeners.get(gr, ())):
            listener(rt, entry)
        return new

    def _index(self, gr: str, obj: Obj) -> None:
        meta = obj["metadata"]
        key = (gr, meta.get("namespace", ""), meta["name"])
        self._uids[meta["uid"]] = key
        for ref in meta.get("ownerReferences") or []:
            self._dependents.setdefault(ref["uid"], set()).add(key)

    def _unindex(self, obj: Obj) -> None:
        meta = obj["metadata"]
        gr_ns_name = self._uids.pop(meta["uid"], None)
        if gr_ns_name is None:
            return
        for ref in meta.get("ownerReferences") or []:
            deps = self._dependents.get(ref["uid"])
            if deps is not None:
                deps.discard(gr_ns_name)
                if not deps:
                    del self._dependents[ref["uid"]]

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        """Delete `obj` for good (DELETED event), then collect what depended on it."""
        gone = copy_obj(obj)
        old = self._stored(rt, gone["metadata"].get("namespace"), gone["metadata"]["name"])
        gone = self._commit(rt, "DELETED", gone, old)
        self._after_removal(rt, gone)
        return gone

    def _after_removal(self, rt: ResourceType, gone: Obj) -> None:
        meta = gone["metadata"]
        for key in sorted(self._dependents.get(meta["uid"], set())):
            self._collect_dependent(key, meta["uid"])
        for ref in meta.get("ownerReferences") or []:
            self._maybe_finish_foreground(ref["uid"])
        ns = meta.get("namespace")
        if ns:
            self._maybe_finish_namespace(ns)

    def _collect_dependent(self, key: tuple[str, str, str], owner_uid: str) -> None:
        gr, ns, name = key
        rt = self._types.get(gr)
        dep = self._stored(rt, ns, name) if rt is not None else None
        if rt is None or dep is None or dep["metadata"].get("deletionTimestamp"):
            return
        owners = [r["uid"] for r in dep["metadata"].get("ownerReferences") or [] if r["uid"] != owner_uid]
        if any(uid in self._uids for uid in owners):
            return
        self.delete_object(rt, ns, name, propagation="Background")

    def _collect_garbage_for(self, rt: ResourceType, obj: Obj) -> None:
        """Act on the propagation finalizers of an object being deleted."""
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        deps = sorted(self._dependents.get(meta["uid"], set()))
        if "orphan" in finalizers:
            for gr, ns, name in deps:
                dep_rt = self._types[gr]
                dep = self._stored(dep_rt, ns, name)
                if dep is not None:
                    orphan = copy_obj(dep)
                    refs = orphan["metadata"].get("ownerReferences") or []
                    refs = [r for r in refs if r["uid"] != meta["uid"]]
                    orphan["metadata"]["ownerReferences"] = refs
                    if not refs:
                        del orphan["metadata"]["ownerReferences"]
                    self._stamp(self.registry.spec(dep_rt), orphan, dep, GC_MANAGER, None, None, None)
                    self._commit(dep_rt, "MODIFIED", orphan, dep)
            self._drop_finalizer(rt, obj, "orphan")
        elif "foregroundDeletion" in finalizers:
            for key in deps:
                self._collect_dependent(key, meta["uid"])
            self._maybe_finish_foreground(meta["uid"])

    def _maybe_finish_foreground(self, owner_uid: str) -> None:
        key = self._uids.get(owner_uid)
        if key is None or self._dependents.get(owner_uid):
            return
        rt = self._types[key[0]]
        owner = self._stored(rt, key[1], key[2])
        if owner is not None and "foregroundDeletion" in (owner["metadata"].get("finalizers") or []):
            self._drop_finalizer(rt, owner, "foregroundDeletion")

    def _drop_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        current = self._stored(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if current is None:
            return
        new = copy_obj(current)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
            self._remove(rt, new)
        else:
            self._stamp(self.registry.spec(rt), new, current, GC_MANAGER, None, None, None)
            self._commit(rt, "MODIFIED", new, current)

    def _delete_namespace(self, ns_obj: Obj) -> tuple[Obj, bool]:
        name = ns_obj["metadata"]["name"]
        if not ns_obj["metadata"].get("deletionTimestamp"):
            new = copy_obj(ns_obj)
            new["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
            new["status"] = {"phase": "Terminating"}
            self._commit(kinds.NAMESPACES, "MODIFIED", new, ns_obj)
            for gr, bucket in list(self._buckets.items()):
                rt = self._types[gr]
                for obj_name in sorted(bucket.get(name, {})):
                    obj = self._stored(rt, name, obj_name)
                    if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                        self.delete_object(rt, name, obj_name, propagation="Background")
            self._maybe_finish_namespace(name)
        current = self._stored(kinds.NAMESPACES, None, name)
        return copy_obj(current if current is not None else ns_obj), current is None

    def _maybe_finish_namespace(self, ns: str) -> None:
        ns_obj = self._stored(kinds.NAMESPACES, None, ns)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if any(bucket.get(ns) for gr, bucket in self._buckets.items() if gr != "namespaces"):
            return
        self._remove(kinds.NAMESPACES, ns_obj)


def _apply_status_schema(schema: Obj, new: Obj, old: Obj | None) -> SchemaResult:
    """`apply_schema` on the status of `new` alone (pruned and defaulted in place)."""
    status_schema = (schema.get("properties") or {}).get("status")
    if status_schema is None or "status" not in new:
        return apply_schema(schema, new, old)
    view = {"status": new["status"]}
    before = {"status": old["status"]} if old is not None and "status" in old else None
    result = apply_schema({"type": "object", "properties": {"status": status_schema}}, view, before)
    if "status" in view:
        new["status"] = view["status"]
    else:
        new.pop("status")
    return result


def _status_only_schema(spec: ResourceSpec) -> bool:
    """A status write of this resource runs nothing that could change its other fields: no `prepare` hook,
    and a schema applied to the status alone (no hook sees a status write either)."""
    schema = spec.schema
    return spec.prepare is None and schema is not None and "status" in (schema.get("properties") or {})


def _with_status_of(old: Obj, request: Obj, *, share: bool = False) -> Obj:
    """A copy of `old` carrying the status of `request` (a status write): old's own status is not copied.
    `share`: nothing will change the fields besides metadata and status, so the new version shares them with
    the old one (stored versions are read-only) instead of copying them."""
    status = request.get("status")
    new: Obj = {}
    for key, value in old.items():
        if key == "status":
            if status is not None:
                new[key] = clone(status)
        elif share and key != "metadata":
            new[key] = value
        else:
            new[key] = clone(value)
    if status is not None and "status" not in old:
        new["status"] = clone(status)
    return new


def _content(obj: Obj, has_status: bool) -> dict[str, Any]:
    skip = ("metadata", "status", "apiVersion", "kind") if has_status else ("metadata", "apiVersion", "kind")
    return {k: v for k, v in obj.items() if k not in skip}


def parse_resource_version(value: str) -> int:
    try:
        rv = int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f'invalid resource version "{value}"') from None
    if rv < 0:
        raise ApiError(400, "BadRequest", f'invalid resource version "{value}"')
    return rv


class _StoreWatch:
    """The in-process watch iterator: copies of events, ends when the watcher closes."""

    def __init__(self, watcher: Watcher | ApiError) -> None:
        self._watcher = watcher

    def __aiter__(self) -> _StoreWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        if isinstance(self._watcher, ApiError):
            raise self._watcher
        item = await self._watcher.next()
        if item is None:
            raise StopAsyncIteration
        kind, entry = item
        return WatchEvent(kind, copy_obj(entry.obj))  # type: ignore[arg-type]

    async def aclose(self) -> None:
        if isinstance(self._watcher, Watcher):
            self._watcher.close()
