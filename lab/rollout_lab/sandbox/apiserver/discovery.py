"""Discovery documents (`/version`, `/api`, `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}`)
in the classic (unaggregated) JSON form every client accepts."""

from __future__ import annotations

import hashlib
from typing import Any

from rollout_lab.sandbox.apiserver.resources import ResourceRegistry, ResourceSpec
from rollout_lab.sandbox.store_api import ApiError, Obj

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-sandbox"}


def version_info() -> Obj:
    return {
        **KUBE_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23 (sandbox: knative-rollout)",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _groups(registry: ResourceRegistry) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for spec in registry:
        if spec.rt.group:
            versions = groups.setdefault(spec.rt.group, [])
            if spec.rt.version not in versions:
                versions.append(spec.rt.version)
    return groups


def _group(name: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: ResourceRegistry) -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in _groups(registry).items()],
    }


def group(registry: ResourceRegistry, name: str) -> Obj:
    versions = _groups(registry).get(name)
    if not versions:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource(spec: ResourceSpec) -> list[dict[str, Any]]:
    rt = spec.rt
    main: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular or rt.kind.lower(),
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(spec.verbs),
        "storageVersionHash": _hash(f"{rt.group}/{rt.version}/{rt.kind}")[:12],
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if spec.categories:
        main["categories"] = list(spec.categories)
    out = [main]
    if rt.has_status:
        out.append(
            {
                "name": f"{rt.plural}/status",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return out


def resource_list(registry: ResourceRegistry, group_version: str) -> Obj:
    specs = registry.group_versions().get(group_version)
    if not specs:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    resources: list[dict[str, Any]] = []
    for spec in specs:
        resources.extend(_resource(spec))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
