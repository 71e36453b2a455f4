"""What RBAC sees of an API request, and what RBAC rules allow.

`attributes()` turns an HTTP request into the (verb, API group, resource[/subresource]) that the API
server's authorizer checks, following Kubernetes' request-info rules (GET on a collection is `list`, with
`watch=true` it is `watch`, PUT is `update`, DELETE on a collection is `deletecollection`, ...).
`permissions()` flattens Role/ClusterRole rules into the same triples, so the two can be compared as sets.
`static_calls()` finds the call sites that name a resource directly, for calls a test scenario may not reach.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

Permission = tuple[str, str, str]  # verb, group ("" = core), resource or resource/subresource

# /api/v1/namespaces/{name}/{status,finalize} are subresources of the namespace, not namespaced resources
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class RequestAttributes:
    verb: str
    group: str
    resource: str  # with "/subresource" when there is one
    namespace: str = ""
    name: str = ""

    @property
    def permission(self) -> Permission:
        return (self.verb, self.group, self.resource)


def attributes(method: str, url: str) -> RequestAttributes | None:
    """RBAC attributes of a request for a resource path; None for discovery and other non-resource paths."""
    split = urlsplit(url)
    query = parse_qs(split.query)
    parts = [p for p in split.path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    watch = query.get("watch", [""])[0].lower() in {"true", "1"}
    if rest and rest[0] == "watch":  # deprecated /watch/ paths
        watch, rest = True, rest[1:]
    if not rest:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    method = method.upper()
    if method == "GET":
        verb = "watch" if watch else ("get" if name else "list")
    elif method == "HEAD":
        verb = "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
    return RequestAttributes(verb, group, resource, namespace, name)


@dataclass(frozen=True)
class Grant:
    """One (verb, group, resource) a rule grants, limited to `names` when the rule has resourceNames."""

    permission: Permission
    names: frozenset[str] = frozenset()


def grants(rules: Iterable[Mapping[str, object]]) -> list[Grant]:
    out: list[Grant] = []
    for rule in rules:
        names = frozenset(_strings(rule.get("resourceNames")))
        for group in _strings(rule.get("apiGroups")):
            for resource in _strings(rule.get("resources")):
                for verb in _strings(rule.get("verbs")):
                    out.append(Grant((verb, group, resource), names))
    return out


def permissions(rules: Iterable[Mapping[str, object]]) -> set[Permission]:
    return {g.permission for g in grants(rules)}


def allowed(rules: Iterable[Mapping[str, object]], request: RequestAttributes) -> bool:
    for grant in grants(rules):
        if grant.permission == request.permission and (not grant.names or request.name in grant.names):
            return True
    return False


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    assert isinstance(value, list), value
    return [str(v) for v in value]


# KubeClient methods (rollout/kube/client.py) and the RBAC verb each sends
CLIENT_VERBS = {
    "get": "get",
    "list": "list",
    "watch": "watch",
    "create": "create",
    "create_unfenced": "create",
    "merge_patch": "patch",
    "replace": "update",
    "delete": "delete",
}


def static_calls(package: Path, resources: Mapping[str, tuple[str, str]]) -> dict[Permission, list[str]]:
    """Call sites in `package` that name a resource constant directly: `client.<method>(CONST, ...)` (with a
    literal `subresource=`), and `informer(CONST, ...)`/`Informer(client, CONST, ...)` (list and watch).
    `resources` maps constant names to (group, plural). Returns each permission with where it is used."""
    found: dict[Permission, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        # Only names that really are the resource constants: imported from rollout.kube.resources (a module
        # may define a look-alike of its own, e.g. the demo's in-process store types).
        imported = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "rollout.kube.resources"
            for alias in node.names
        }
        if path.name == "resources.py" and path.parent.name == "kube":
            imported = set(resources)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            consts = [
                a.id for a in node.args if isinstance(a, ast.Name) and a.id in resources and a.id in imported
            ]
            if not consts:
                continue
            where = f"{path.relative_to(package.parent)}:{node.lineno}"
            if "informer" in name.lower():
                group, plural = resources[consts[0]]
                for verb in ("list", "watch"):
                    found.setdefault((verb, group, plural), []).append(where)
            elif (
                name in CLIENT_VERBS
                and isinstance(func, ast.Attribute)
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                if node.args[0].id not in resources or node.args[0].id not in imported:
                    continue
                group, plural = resources[node.args[0].id]
                sub = next(
                    (
                        k.value.value
                        for k in node.keywords
                        if k.arg == "subresource" and isinstance(k.value, ast.Constant)
                    ),
                    None,
                )
                resource = f"{plural}/{sub!s}" if sub else plural
                found.setdefault((CLIENT_VERBS[name], group, resource), []).append(where)
    return found
