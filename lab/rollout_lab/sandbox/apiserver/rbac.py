"""Role-based access control as the API server evaluates it, for the sandbox's access reviews.

The sandbox stores Roles, ClusterRoles and their bindings like any built-in kind, and answers
SubjectAccessReviews from them (see `reviews`). It does not enforce them on its own requests: every client
holding a known token may do everything, as a single-user development cluster lets its admin. What it
answers is what a cluster would answer for the same objects:
- a subject is a User (by name), a Group (any of the user's groups) or a ServiceAccount (the user
  `system:serviceaccount:<namespace>:<name>`);
- the group `system:masters` is allowed everything, as the API server's superuser group is;
- ClusterRoleBindings grant their ClusterRole everywhere; RoleBindings grant their Role or ClusterRole in
  their namespace, and only for namespaced resource requests there;
- a rule matches when its verbs, apiGroups and resources (`*` for any; `resource/subresource`) and, when it
  names any, its resourceNames match; non-resource URLs match exactly or by a trailing `*` prefix.
Aggregated ClusterRoles (aggregationRule) are not expanded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rollout_lab.sandbox.apiserver.resources import PrinterColumn, ResourceSpec
from rollout_lab.sandbox.apiserver.schema_dsl import STR, STRINGS, Schema, arr, obj
from rollout_lab.sandbox.store_api import Obj, ResourceType

if TYPE_CHECKING:  # the store's registry is built from these specs
    from rollout_lab.sandbox.apiserver.store import MemoryStore

GROUP = "rbac.authorization.k8s.io"
SUPERUSERS = "system:masters"

CLUSTER_ROLES = ResourceType(GROUP, "v1", "clusterroles", "ClusterRole", namespaced=False,
                             singular="clusterrole", has_status=False)  # fmt: skip
CLUSTER_ROLE_BINDINGS = ResourceType(GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding",
                                     namespaced=False, singular="clusterrolebinding",
                                     has_status=False)  # fmt: skip
ROLES = ResourceType(GROUP, "v1", "roles", "Role", singular="role", has_status=False)
ROLE_BINDINGS = ResourceType(GROUP, "v1", "rolebindings", "RoleBinding", singular="rolebinding",
                             has_status=False)  # fmt: skip


def _rules_schema() -> Schema:
    rule = obj(
        ("verbs",),
        apiGroups=STRINGS,
        nonResourceURLs=STRINGS,
        resourceNames=STRINGS,
        resources=STRINGS,
        verbs=STRINGS,
    )
    return {
        "type": "object",
        "properties": {
            "apiVersion": STR,
            "kind": STR,
            "metadata": {"type": "object"},
            "rules": arr(rule, "atomic"),
            "aggregationRule": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }


def _binding_schema() -> Schema:
    subject = obj(("kind", "name"), apiGroup=STR, kind=STR, name=STR, namespace=STR)
    return {
        "type": "object",
        "required": ["roleRef"],
        "properties": {
            "apiVersion": STR,
            "kind": STR,
            "metadata": {"type": "object"},
            "roleRef": obj(("apiGroup", "kind", "name"), apiGroup=STR, kind=STR, name=STR),
            "subjects": arr(subject, "atomic"),
        },
    }


_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")
_ROLE_COLUMNS = (PrinterColumn("Created At", "string", ".metadata.creationTimestamp"),)
_BINDING_COLUMNS = (PrinterColumn("Role", "string", ".roleRef.name"), _AGE)


def specs() -> list[ResourceSpec]:
    return [
        ResourceSpec(
            CLUSTER_ROLES, uses_generation=False, schema=_rules_schema(), printer_columns=_ROLE_COLUMNS
        ),
        ResourceSpec(ROLES, uses_generation=False, schema=_rules_schema(), printer_columns=_ROLE_COLUMNS),
        ResourceSpec(
            CLUSTER_ROLE_BINDINGS,
            uses_generation=False,
            schema=_binding_schema(),
            printer_columns=_BINDING_COLUMNS,
        ),
        ResourceSpec(
            ROLE_BINDINGS, uses_generation=False, schema=_binding_schema(), printer_columns=_BINDING_COLUMNS
        ),
    ]


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as a TokenReview reports it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)

    def as_status(self) -> Obj:
        out: Obj = {"username": self.username, "uid": self.uid, "groups": list(self.groups)}
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


@dataclass(frozen=True)
class Attributes:
    """What is asked: a resource request (`resource` set) or a non-resource URL (`path` set)."""

    user: UserInfo
    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return not self.path


def _matches(values: Iterable[str], wanted: str) -> bool:
    return any(v in ("*", wanted) for v in values)


def _url_matches(patterns: Iterable[str], path: str) -> bool:
    return any(p in (path, "*") or (p.endswith("*") and path.startswith(p[:-1])) for p in patterns)


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    if not _matches(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.is_resource:
        return _url_matches(rule.get("nonResourceURLs") or [], attrs.path)
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if not _matches(rule.get("apiGroups") or [], attrs.group):
        return False
    if not _matches(rule.get("resources") or [], resource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _subject_matches(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.username)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.username == f"system:serviceaccount:{namespace}:{name}"
    return False


class Authorizer:
    """Answers "may this user do this?" from the RBAC objects in `store` (see the module docstring)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def decide(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason); the reason names the binding and role that allowed it, as RBAC does."""
        if SUPERUSERS in attrs.user.groups:
            return True, f"allowed by the group {SUPERUSERS}"
        for binding, role in self._granting(attrs):
            if any(rule_allows(rule, attrs) for rule in role.get("rules") or []):
                where = binding["metadata"].get("namespace")
                kind = "RoleBinding" if where else "ClusterRoleBinding"
                place = f' in namespace "{where}"' if where else ""
                return True, (
                    f'RBAC: allowed by {kind} "{binding["metadata"]["name"]}"{place} of '
                    f'{binding["roleRef"]["kind"]} "{role["metadata"]["name"]}" to {attrs.user.username}'
                )
        return False, ""

    def _granting(self, attrs: Attributes) -> Iterator[tuple[Obj, Obj]]:
        for binding in self.store.list_stored(CLUSTER_ROLE_BINDINGS, None, None):
            role = self._role(binding, None)
            if role is not None and self._binds(binding, attrs.user):
                yield binding, role
        if attrs.is_resource and attrs.namespace:
            for binding in self.store.list_stored(ROLE_BINDINGS, attrs.namespace, None):
                role = self._role(binding, attrs.namespace)
                if role is not None and self._binds(binding, attrs.user):
                    yield binding, role

    def _binds(self, binding: Obj, user: UserInfo) -> bool:
        namespace = binding["metadata"].get("namespace") or ""
        return any(_subject_matches(s, user, namespace) for s in binding.get("subjects") or [])

    def _role(self, binding: Obj, namespace: str | None) -> Obj | None:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            return self.store.find_stored(CLUSTER_ROLES, None, str(ref.get("name")))
        if ref.get("kind") == "Role" and namespace:
            return self.store.find_stored(ROLES, namespace, str(ref.get("name")))
        return None
