"""`/openapi/v3`: the index of group-versions and one OpenAPI 3 document per group-version, with each
served kind's schema (tagged with x-kubernetes-group-version-kind) and its REST paths and parameters —
enough for `kubectl apply` (it checks that PATCH accepts `fieldValidation`) and `kubectl explain`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rollout_lab.sandbox.apiserver.discovery import KUBE_VERSION
from rollout_lab.sandbox.apiserver.objects import clone
from rollout_lab.sandbox.apiserver.resources import ResourceRegistry, ResourceSpec
from rollout_lab.sandbox.apiserver.schema_dsl import STR, STRING_MAP, Schema, arr, integer, obj
from rollout_lab.sandbox.store_api import ApiError, Obj

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _meta_schemas() -> dict[str, Schema]:
    owner = obj(
        ("apiVersion", "kind", "name", "uid"),
        apiVersion=STR,
        blockOwnerDeletion={"type": "boolean"},
        controller={"type": "boolean"},
        kind=STR,
        name=STR,
        uid=STR,
    )
    return {
        OBJECT_META: obj(
            annotations=STRING_MAP,
            creationTimestamp={"type": "string", "format": "date-time"},
            deletionGracePeriodSeconds=integer("int64"),
            deletionTimestamp={"type": "string", "format": "date-time"},
            finalizers=arr(STR, "set"),
            generateName=STR,
            generation=integer("int64"),
            labels=STRING_MAP,
            managedFields=arr({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, "atomic"),
            name=STR,
            namespace=STR,
            ownerReferences=arr(owner, "map", ("uid",)),
            resourceVersion=STR,
            selfLink=STR,
            uid=STR,
        ),
        LIST_META: obj(
            remainingItemCount=integer("int64"), resourceVersion=STR, selfLink=STR, **{"continue": STR}
        ),
        STATUS: obj(
            apiVersion=STR,
            code=integer(),
            details={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            kind=STR,
            message=STR,
            metadata=_ref(LIST_META),
            reason=STR,
            status=STR,
        ),
    }


def schema_name(spec: ResourceSpec, suffix: str = "") -> str:
    rt = spec.rt
    if not rt.group:
        prefix = "io.k8s.api.core"
    elif rt.group == "apiextensions.k8s.io":
        prefix = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
    elif rt.group.endswith(".k8s.io"):
        prefix = f"io.k8s.api.{rt.group.split('.')[0]}"
    else:
        prefix = ".".join(reversed(rt.group.split(".")))
    return f"{prefix}.{rt.version}.{rt.kind}{suffix}"


def _gvk(spec: ResourceSpec, kind: str) -> list[dict[str, str]]:
    return [{"group": spec.rt.group, "version": spec.rt.version, "kind": kind}]


def _kind_schemas(spec: ResourceSpec) -> dict[str, Schema]:
    base: Schema = clone(spec.schema) if spec.schema else {"type": "object"}
    props = base.setdefault("properties", {})
    props["metadata"] = _ref(OBJECT_META)
    props.setdefault("apiVersion", STR)
    props.setdefault("kind", STR)
    base["x-kubernetes-group-version-kind"] = _gvk(spec, spec.rt.kind)
    listing = obj(
        ("items",), apiVersion=STR, items=arr(_ref(schema_name(spec))), kind=STR, metadata=_ref(LIST_META)
    )
    listing["x-kubernetes-group-version-kind"] = _gvk(spec, f"{spec.rt.kind}List")
    return {schema_name(spec): base, schema_name(spec, "List"): listing}


def _param(name: str, where: str = "query", kind: str = "string") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": {"type": kind}}
    if where == "path":
        out["required"] = True
    return out


_WRITE_PARAMS = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
_LIST_PARAMS = [
    _param("allowWatchBookmarks", kind="boolean"),
    _param("continue"),
    _param("fieldSelector"),
    _param("labelSelector"),
    _param("limit", kind="integer"),
    _param("resourceVersion"),
    _param("resourceVersionMatch"),
    _param("sendInitialEvents", kind="boolean"),
    _param("timeoutSeconds", kind="integer"),
    _param("watch", kind="boolean"),
]


def _operation(spec: ResourceSpec, action: str, op_id: str, ref: str, params: list[Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref(ref)}}
    out: dict[str, Any] = {
        "operationId": op_id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": content}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": spec.rt.group,
            "version": spec.rt.version,
            "kind": spec.rt.kind,
        },
    }
    if action in ("post", "put", "patch"):
        kinds = (
            ["application/json"]
            if action != "patch"
            else [
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
                *(["application/strategic-merge-patch+json"] if spec.builtin else []),
            ]
        )
        body = _ref(ref) if action != "patch" else {"type": "object"}
        out["requestBody"] = {"content": {k: {"schema": body} for k in kinds}, "required": True}
    return out


def _paths(spec: ResourceSpec) -> dict[str, Any]:
    rt = spec.rt
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    kind, one, many = rt.kind, schema_name(spec), schema_name(spec, "List")
    scope = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    scope_params = [_param("namespace", "path")] if rt.namespaced else []
    name_params = [*scope_params, _param("name", "path")]
    ns = "Namespaced" if rt.namespaced else ""
    paths: dict[str, Any] = {
        scope: {
            "get": _operation(spec, "list", f"list{ns}{kind}", many, [*scope_params, *_LIST_PARAMS]),
            "post": _operation(spec, "post", f"create{ns}{kind}", one, [*scope_params, *_WRITE_PARAMS]),
            "delete": _operation(
                spec, "deletecollection", f"deleteCollection{ns}{kind}", STATUS, scope_params
            ),
        },
        f"{scope}/{{name}}": {
            "get": _operation(spec, "get", f"read{ns}{kind}", one, name_params),
            "put": _operation(spec, "put", f"replace{ns}{kind}", one, [*name_params, *_WRITE_PARAMS]),
            "patch": _operation(
                spec,
                "patch",
                f"patch{ns}{kind}",
                one,
                [*name_params, *_WRITE_PARAMS, _param("force", kind="boolean")],
            ),
            "delete": _operation(
                spec, "delete", f"delete{ns}{kind}", STATUS, [*name_params, _param("dryRun")]
            ),
        },
    }
    if rt.has_status:
        paths[f"{scope}/{{name}}/status"] = {
            "get": _operation(spec, "get", f"read{ns}{kind}Status", one, name_params),
            "put": _operation(spec, "put", f"replace{ns}{kind}Status", one, [*name_params, *_WRITE_PARAMS]),
            "patch": _operation(spec, "patch", f"patch{ns}{kind}Status", one, [*name_params, *_WRITE_PARAMS]),
        }
    if rt.namespaced:
        paths[f"{base}/{rt.plural}"] = {
            "get": _operation(spec, "list", f"list{kind}ForAllNamespaces", many, list(_LIST_PARAMS)),
        }
    return paths


def document(registry: ResourceRegistry, gv_path: str) -> Obj:
    """The OpenAPI 3 document of `api/v1` or `apis/{group}/{version}`; 404 for anything else."""
    if gv_path == "api/v1":
        group_version = "v1"
    elif gv_path.startswith("apis/") and gv_path.count("/") == 2:
        group_version = gv_path.removeprefix("apis/")
    else:
        group_version = ""
    specs = registry.group_versions().get(group_version)
    if not specs:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    schemas = _meta_schemas()
    paths: dict[str, Any] = {}
    for spec in specs:
        schemas.update(_kind_schemas(spec))
        paths.update(_paths(spec))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def index(registry: ResourceRegistry) -> Obj:
    paths: dict[str, Any] = {}
    for group_version in registry.group_versions():
        gv_path = f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"
        digest = hashlib.sha512(json.dumps(document(registry, gv_path), sort_keys=True).encode()).hexdigest()
        paths[gv_path] = {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={digest[:128].upper()}"}
    return {"paths": paths}
