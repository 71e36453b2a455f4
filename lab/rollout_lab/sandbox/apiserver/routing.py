"""Which resource a REST path names: `/api/v1/...` and `/apis/{group}/{version}/...`, namespaced or not,
collection or object, with an optional subresource; `/watch/` paths (deprecated) mean watch=true."""

from __future__ import annotations

from dataclasses import dataclass

from rollout_lab.sandbox.apiserver.resources import ResourceRegistry, ResourceSpec
from rollout_lab.sandbox.store_api import ApiError

NOT_FOUND = "the server could not find the requested resource"
SUBRESOURCES = ("status",)


@dataclass(frozen=True)
class Target:
    spec: ResourceSpec
    namespace: str | None  # None: cluster-scoped, or a collection across namespaces
    name: str | None  # None: the collection
    subresource: str | None = None
    watch_path: bool = False

    @property
    def is_collection(self) -> bool:
        return self.name is None


@dataclass(frozen=True)
class DiscoveryTarget:
    """`/api/v1` or `/apis/{group}/{version}`: the APIResourceList; group only: `/apis/{group}`."""

    group_version: str
    group_only: bool = False


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", NOT_FOUND)


def parse(registry: ResourceRegistry, prefix: str, path: str) -> Target | DiscoveryTarget:
    """Resolve `path` (after `/api/` or `/apis/`) against the served resources; 404 when nothing matches."""
    segments = [s for s in path.split("/") if s]
    if prefix == "api":
        if not segments or segments[0] != "v1":
            raise _not_found()
        group, version, rest = "", "v1", segments[1:]
    else:
        if len(segments) == 1:
            return DiscoveryTarget(segments[0], group_only=True)
        if len(segments) < 2:
            raise _not_found()
        group, version, rest = segments[0], segments[1], segments[2:]
    group_version = f"{group}/{version}" if group else version
    if not rest:
        return DiscoveryTarget(group_version)
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    if not rest:
        raise _not_found()
    if rest[0] == "namespaces" and not group and (len(rest) <= 2 or rest[2] in ("status", "finalize")):
        spec = registry.lookup("", version, "namespaces")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise _not_found()
        return Target(spec, None, name, _subresource(spec, sub), watch_path)
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace = rest[1]
        spec = registry.lookup(group, version, rest[2])
        if not spec.rt.namespaced or len(rest) > 5:
            raise _not_found()
        name = rest[3] if len(rest) > 3 else None
        sub = rest[4] if len(rest) > 4 else None
        return Target(spec, namespace, name, _subresource(spec, sub), watch_path)
    spec = registry.lookup(group, version, rest[0])
    if len(rest) > 3 or (spec.rt.namespaced and len(rest) > 1):
        raise _not_found()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return Target(spec, None, name, _subresource(spec, sub), watch_path)


def _subresource(spec: ResourceSpec, sub: str | None) -> str | None:
    if sub is None:
        return None
    if sub == "finalize" and spec.rt.plural == "namespaces" and not spec.rt.group:
        return sub
    if sub == "status" and spec.rt.has_status:
        return sub
    raise _not_found()
