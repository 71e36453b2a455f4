"""The REST handlers of resources: GET/LIST/WATCH, POST, PUT, PATCH, DELETE and DELETE-collection on
`/api/v1/...` and `/apis/{group}/{version}/...`, answering like the API server (status codes, `Status`
errors, Tables, warnings for dropped fields, dry runs)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import yaml
from aiohttp import web
from multidict import MultiMapping

from rollout_lab.sandbox.apiserver import (
    audit,
    discovery,
    jsoncodec,
    managedfields,
    patches,
    protobuf,
    reviews,
    routing,
    tables,
    watch_http,
)
from rollout_lab.sandbox.apiserver.faults import FaultInjector, injected_error
from rollout_lab.sandbox.apiserver.objects import OPTIMISTIC_LOCK, conflict, copy_obj, qualified, rfc3339
from rollout_lab.sandbox.apiserver.paging import Page, Snapshots
from rollout_lab.sandbox.apiserver.resources import ResourceSpec
from rollout_lab.sandbox.apiserver.routing import DiscoveryTarget, Target
from rollout_lab.sandbox.apiserver.store import MemoryStore, parse_resource_version
from rollout_lab.sandbox.store_api import ApiError, Obj

log = logging.getLogger(__name__)
RETURNS_DELETED_OBJECT = frozenset({"namespaces"})
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", patches.APPLY_YAML)


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {"Warning": ", ".join(f'299 - "{_quote(w)}"' for w in warnings)} if warnings else None
    return web.Response(
        body=jsoncodec.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def status_response(err: ApiError) -> web.Response:
    response = json_response(err.status(), status=err.code)
    retry = err.details.get("retryAfterSeconds")
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    return response


def _accepts(request: web.Request, what: str) -> bool:
    return any(f"as={what}" in part.replace(" ", "") for part in request.headers.get("Accept", "").split(","))


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "BadRequest", "the request body is empty")
    if request.content_type == protobuf.CONTENT_TYPE:
        return protobuf.decode(raw)
    try:
        if request.content_type in YAML_TYPES:
            return yaml.safe_load(raw)
        return jsoncodec.loads(raw)
    except (ValueError, yaml.YAMLError) as err:
        raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {err}") from None


def _object_body(body: Any) -> Obj:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
    return body


def _write_options(query: MultiMapping[str]) -> tuple[bool, str]:
    dry_run = [d for d in query.getall("dryRun", []) if d]
    if any(d != "All" for d in dry_run):
        raise ApiError(
            400, "BadRequest", f'dryRun: Unsupported value: "{dry_run[0]}": supported values: "All"'
        )
    validation = query.get("fieldValidation") or "Warn"
    if validation not in ("Ignore", "Warn", "Strict"):
        raise ApiError(
            400,
            "BadRequest",
            f'fieldValidation: Unsupported value: "{validation}": '
            'supported values: "Ignore", "Strict", "Warn"',
        )
    return bool(dry_run), validation


def field_manager(request: web.Request, options_kind: str) -> str:
    """The request's `fieldManager`, else the manager the server derives from its User-Agent."""
    manager = request.query.get("fieldManager")
    if manager:
        managedfields.validate_manager(manager, options_kind)
        return manager
    return managedfields.manager_from_user_agent(request.headers.get("User-Agent", ""))


class RestApi:
    """The resource handlers over one store (see the module docstring)."""

    def __init__(
        self,
        store: MemoryStore,
        faults: FaultInjector,
        streams: watch_http.WatchStreams,
        watch_config: watch_http.WatchConfig,
        access: reviews.Reviews | None = None,
    ) -> None:
        self.store = store
        self.faults = faults
        self.streams = streams
        self.watch_config = watch_config
        self.snapshots = Snapshots()
        self.reviews = access
        self.audit = audit.AuditLog()  # who wrote what (tests check which replica wrote which object)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        prefix = "api" if request.path.startswith("/api/") or request.path == "/api" else "apis"
        tail = request.match_info.get("tail", "")
        target = routing.parse(self.store.registry, prefix, tail)
        if isinstance(target, DiscoveryTarget):
            if request.method != "GET":
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            if target.group_only:
                return json_response(discovery.group(self.store.registry, target.group_version))
            return json_response(discovery.resource_list(self.store.registry, target.group_version))
        verb = self._verb(request, target)
        if verb not in target.spec.verbs:
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        await self._inject(verb, target)
        if self.reviews is not None and reviews.is_review(target.spec.rt):
            answer = self.reviews.answer(
                target.spec.rt, _object_body(await read_body(request)), request[reviews.USER]
            )
            return json_response(answer, 201)
        if verb == "watch":
            return await watch_http.serve(
                request,
                self.store,
                target.spec,
                target.namespace,
                config=self.watch_config,
                faults=self.faults,
                streams=self.streams,
                as_table=_accepts(request, "Table"),
            )
        handler = getattr(self, f"_{verb}")
        response: web.StreamResponse = await handler(request, target)
        if verb in audit.WRITE_VERBS and response.status < 300:
            self.audit.record(
                audit.AuditEvent(
                    audit.now(),
                    request.headers.get("User-Agent", ""),
                    verb,
                    target.spec.rt.group_resource,
                    target.namespace,
                    target.name,
                    target.subresource,
                    response.status,
                )
            )
        return response

    def _verb(self, request: web.Request, target: Target) -> str:
        method = request.method
        watch = target.watch_path or request.query.get("watch", "") in watch_http.TRUE
        if target.is_collection:
            verbs = {"GET": "watch" if watch else "list", "POST": "create", "DELETE": "deletecollection"}
            if method == "POST" and target.spec.rt.namespaced and target.namespace is None:
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
        else:
            verbs = {
                "GET": "watch" if watch else "get",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }
            if target.subresource is not None:
                verbs = {k: v for k, v in verbs.items() if k in ("GET", "PUT", "PATCH")}
        verb = verbs.get(method)
        if verb is None:
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        return verb

    async def _inject(self, verb: str, target: Target) -> None:
        resource = target.spec.rt.group_resource
        delay = self.faults.pick("latency", verb, resource, target.namespace)
        if delay is not None:
            await asyncio.sleep(delay.latency)
        fault = self.faults.pick("error", verb, resource, target.namespace)
        if fault is not None:
            raise injected_error(fault, qualified(target.spec.rt), target.name)

    # ------------------------------------------------------------------ reads

    def _render_one(self, request: web.Request, spec: ResourceSpec, obj: Obj) -> Obj:
        if _accepts(request, "Table"):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return tables.table(
                spec, [obj], meta, request.query.get("includeObject", "Metadata"), self.store.clock
            )
        if _accepts(request, "PartialObjectMetadata"):
            return tables.partial_metadata(obj)
        return obj

    async def _get(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        obj = self.store.get_stored(target.spec.rt, target.namespace, target.name)
        return json_response(self._render_one(request, target.spec, obj))

    async def _list(self, request: web.Request, target: Target) -> web.Response:
        query = request.query
        spec = target.spec
        limit = self._limit(query.get("limit"))
        token = query.get("continue")
        if token:
            page = self.snapshots.resume(token, limit)
        else:
            rv = self._list_version(query)
            predicate = self.store.selector_predicate(
                spec.rt, query.get("labelSelector"), query.get("fieldSelector")
            )
            items = self.store.list_stored(spec.rt, target.namespace, predicate)
            page = self.snapshots.first(items, rv, limit)
        return json_response(self._render_list(request, spec, page))

    def _limit(self, value: str | None) -> int | None:
        if not value:
            return None
        try:
            return max(0, int(value))
        except ValueError:
            raise ApiError(400, "BadRequest", f'invalid limit "{value}"') from None

    def _list_version(self, query: Mapping[str, str]) -> str:
        """The version a list is served at: always the newest; a requested version newer than that is a 504
        (as the server answers after waiting), an exact older one is 410 (history is not kept)."""
        current = self.store.resource_version
        wanted = query.get("resourceVersion")
        if not wanted or wanted == "0":
            return current
        rv = parse_resource_version(wanted)
        if rv > int(current):
            raise ApiError(
                504,
                "Timeout",
                f"Too large resource version: {rv}, current: {current}",
                {
                    "causes": [
                        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                    ],
                    "retryAfterSeconds": 1,
                },
            )
        if query.get("resourceVersionMatch") == "Exact" and str(rv) != current:
            raise ApiError(410, "Expired", f"too old resource version: {rv} ({current})")
        return current

    def _render_list(self, request: web.Request, spec: ResourceSpec, page: Page) -> Obj:
        meta: Obj = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
            meta["remainingItemCount"] = page.remaining
        if _accepts(request, "Table"):
            include = request.query.get("includeObject", "Metadata")
            return tables.table(spec, page.items, meta, include, self.store.clock)
        if _accepts(request, "PartialObjectMetadataList"):
            return {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": [tables.partial_metadata(o) for o in page.items],
            }
        return {
            "kind": f"{spec.rt.kind}List",
            "apiVersion": spec.rt.api_version,
            "metadata": meta,
            "items": page.items,
        }

    # ------------------------------------------------------------------ writes

    def _scope_body(self, target: Target, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if target.spec.rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != target.namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = target.namespace
        if target.name is not None and meta.get("name") != target.name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL "
                f"({target.name})",
            )
        return obj

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        dry_run, validation = _write_options(request.query)
        obj = self._scope_body(target, _object_body(await read_body(request)))
        warnings: list[str] = []
        created = self.store.create(
            target.spec.rt,
            obj,
            dry_run=dry_run,
            field_validation=validation,
            warnings=warnings,
            field_manager=field_manager(request, "CreateOptions"),
        )
        return json_response(created, 201, warnings)

    async def _update(self, request: web.Request, target: Target) -> web.Response:
        dry_run, validation = _write_options(request.query)
        obj = self._scope_body(target, _object_body(await read_body(request)))
        warnings: list[str] = []
        updated = self.store.update(
            target.spec.rt,
            obj,
            subresource="status" if target.subresource == "status" else None,
            require_resource_version=not target.spec.builtin,
            dry_run=dry_run,
            field_validation=validation,
            warnings=warnings,
            field_manager=field_manager(request, "UpdateOptions"),
        )
        return json_response(updated, 200, warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        dry_run, validation = _write_options(request.query)
        kind = request.content_type
        spec = target.spec
        if kind == patches.STRATEGIC and not spec.builtin:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{patches.JSON_PATCH}, {patches.MERGE}, {patches.APPLY_YAML}, {patches.APPLY_CBOR}",
            )
        if kind not in patches.PATCH_TYPES:
            accepted = ", ".join(t for t in patches.PATCH_TYPES if spec.builtin or t != patches.STRATEGIC)
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{accepted}",
            )
        body = await read_body(request)
        # read-only: an apply merges onto a copy, the other patches copy the object before changing it
        current = self.store.find_stored(spec.rt, target.namespace, target.name)
        warnings: list[str] = []
        subresource = "status" if target.subresource == "status" else None
        force = request.query.get("force", "")
        if force and kind != patches.APPLY_YAML:
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
            )
        applied: list[managedfields.Entry] | None = None
        if kind == patches.APPLY_YAML:
            if not request.query.get("fieldManager"):
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch",
                )
            manager = field_manager(request, "PatchOptions")
            config = self._scope_body(target, _object_body(body))
            if current is None and subresource is not None:
                raise ApiError(404, "NotFound", f'{qualified(spec.rt)} "{target.name}" not found')
            result = managedfields.record_apply(
                managedfields.decode((current or {}).get("metadata", {}).get("managedFields")),
                managedfields.without_managed(copy_obj(current) if current is not None else None),
                managedfields.without_managed(config) or {},
                spec.schema,
                managedfields.Request(
                    manager,
                    spec.rt.api_version,
                    rfc3339(self.store.clock()),
                    subresource or "",
                    spec.rt.has_status,
                ),
                force=force.lower() in ("true", "1"),
            )
            applied = result.entries
            if current is None:
                created = self.store.create(
                    spec.rt,
                    result.obj,
                    dry_run=dry_run,
                    field_validation=validation,
                    warnings=warnings,
                    field_manager=manager,
                    applied=applied,
                )
                return json_response(created, 201, warnings)
            patched = result.obj
            patched["metadata"]["resourceVersion"] = config.get("metadata", {}).get(
                "resourceVersion", current["metadata"]["resourceVersion"]
            )
        else:
            manager = field_manager(request, "PatchOptions")
            if current is None:
                self.store.get_stored(spec.rt, target.namespace, target.name)  # raises the 404
                raise AssertionError  # pragma: no cover
            patched = self._apply_patch(kind, current, body)
        patched = self._scope_body(target, patched)
        if patched["metadata"].get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
            raise conflict(spec.rt, target.name, OPTIMISTIC_LOCK)
        updated = self.store.update(
            spec.rt,
            patched,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=validation,
            warnings=warnings,
            field_manager=manager,
            applied=applied,
            owned=True,  # built for this request: a patch of a copy, or an apply merged onto a copy
            copy_result=False,  # serialized below, before anything else runs
        )
        return json_response(updated, 200, warnings)

    @staticmethod
    def _apply_patch(kind: str, current: Obj, body: Any) -> Obj:
        if kind == patches.MERGE:
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            patched = patches.merge_patch(current, body)
        elif kind == patches.JSON_PATCH:
            patched = patches.json_patch(current, body)
        else:
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a strategic merge patch must be a JSON object")
            patched = patches.strategic_merge_patch(current, body)
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise ApiError(422, "Invalid", "the patched object is not a valid object")
        return patched

    async def _delete_options(self, request: web.Request) -> Obj:
        options: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                body = await read_body(request)
                if isinstance(body, dict):
                    options = body
        for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
            if key in request.query:
                options[key] = request.query[key]
        orphan = options.get("orphanDependents")
        if orphan is not None and "propagationPolicy" not in options:
            options["propagationPolicy"] = "Orphan" if str(orphan).lower() == "true" else "Background"
        return options

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        dry_run, _ = _write_options(request.query)
        options = await self._delete_options(request)
        pre = options.get("preconditions") or {}
        rt = target.spec.rt
        obj, gone = self.store.delete_object(
            rt,
            target.namespace,
            target.name,
            uid=pre.get("uid"),
            resource_version=pre.get("resourceVersion"),
            propagation=options.get("propagationPolicy"),
            dry_run=dry_run,
        )
        if gone and rt.plural not in RETURNS_DELETED_OBJECT:
            details = {
                "name": target.name,
                "group": rt.group,
                "kind": rt.plural,
                "uid": obj["metadata"]["uid"],
            }
            return json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        accepted = not gone and str(options.get("orphanDependents", "")).lower() == "false"
        return json_response(obj, 202 if accepted else 200)

    async def _deletecollection(self, request: web.Request, target: Target) -> web.Response:
        dry_run, _ = _write_options(request.query)
        options = await self._delete_options(request)
        rt = target.spec.rt
        predicate = self.store.selector_predicate(
            rt, request.query.get("labelSelector"), request.query.get("fieldSelector")
        )
        deleted: list[Obj] = []
        for obj in self.store.list_stored(rt, target.namespace, predicate):
            meta = obj["metadata"]
            try:
                last, _gone = self.store.delete_object(
                    rt,
                    meta.get("namespace"),
                    meta["name"],
                    propagation=options.get("propagationPolicy"),
                    dry_run=dry_run,
                )
            except ApiError as err:
                if err.code == 404:
                    continue  # removed meanwhile by the collection of an earlier one
                raise
            deleted.append(last)
        meta_out = {"resourceVersion": self.store.resource_version}
        return json_response(
            {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta_out, "items": deleted}
        )
