"""TokenReview, SubjectAccessReview, SelfSubjectAccessReview and SelfSubjectReview: the create-only kinds through which a
component asks the API server who a bearer token belongs to and what that identity may do. Nothing is
stored; the answer is the object sent back with its `status` filled in (201 Created), as a cluster does.

Tokens are the sandbox's own table (the admin token of its kubeconfig, plus the users a test or
`SandboxApiServer(users=...)` adds), the way kube-apiserver's static token file works; access is decided
from the stored RBAC objects (`rbac`)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from aiohttp import web

from rollout_lab.sandbox.apiserver.rbac import Attributes, Authorizer, UserInfo
from rollout_lab.sandbox.apiserver.resources import ResourceSpec
from rollout_lab.sandbox.apiserver.validation import invalid, invalid_value, required
from rollout_lab.sandbox.store_api import Obj, ResourceType

TOKEN_REVIEWS = ResourceType("authentication.k8s.io", "v1", "tokenreviews", "TokenReview",
                             namespaced=False, has_status=False)  # fmt: skip
SUBJECT_ACCESS_REVIEWS = ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews",
                                      "SubjectAccessReview", namespaced=False,
                                      has_status=False)  # fmt: skip
SELF_SUBJECT_ACCESS_REVIEWS = ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
                                           "SelfSubjectAccessReview", namespaced=False,
                                           has_status=False)  # fmt: skip
USER = web.RequestKey("user", UserInfo)  # who sent a request, set by the server's authentication
SELF_SUBJECT_REVIEWS = ResourceType("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview",
                                    namespaced=False, has_status=False)  # fmt: skip
REVIEW_KINDS = (TOKEN_REVIEWS, SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS)


def specs() -> list[ResourceSpec]:
    return [ResourceSpec(rt, uses_generation=False, verbs=("create",)) for rt in REVIEW_KINDS]


def is_review(rt: ResourceType) -> bool:
    return rt in REVIEW_KINDS


class Identities:
    """Bearer tokens and the users they stand for (compared in constant time)."""

    def __init__(self, users: Mapping[str, UserInfo]) -> None:
        self._users = dict(users)

    def add(self, token: str, user: UserInfo) -> None:
        self._users[token] = user

    def authenticate(self, token: str) -> UserInfo | None:
        found = None
        for known, user in self._users.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found


class Reviews:
    """Answers the three review kinds for `identities` and `authorizer`."""

    def __init__(self, identities: Identities, authorizer: Authorizer) -> None:
        self.identities = identities
        self.authorizer = authorizer

    def answer(self, rt: ResourceType, body: Obj, requester: UserInfo) -> Obj:
        if rt is SELF_SUBJECT_REVIEWS:  # who am I: no spec, the caller's own identity
            return {
                "kind": rt.kind,
                "apiVersion": rt.api_version,
                "metadata": {"creationTimestamp": None},
                "status": {"userInfo": requester.as_status()},
            }
        spec = body.get("spec")
        if not isinstance(spec, dict):
            raise invalid(rt, "", [required("spec")])
        if rt is TOKEN_REVIEWS:
            status = self._token(spec)
        elif rt is SUBJECT_ACCESS_REVIEWS:
            status = self._access(spec, _subject(spec))
        else:
            status = self._access(spec, requester)
        return {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def _token(self, spec: Obj) -> Obj:
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise invalid(TOKEN_REVIEWS, "", [required("spec.token")])
        audiences = [str(a) for a in spec.get("audiences") or []]
        user = self.identities.authenticate(token)
        if user is None:
            return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
        status: Obj = {"authenticated": True, "user": user.as_status()}
        if audiences:
            status["audiences"] = audiences
        return status

    def _access(self, spec: Obj, user: UserInfo) -> Obj:
        resource, url = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if (resource is None) == (url is None):
            why = "exactly one of nonResourceAttributes or resourceAttributes must be specified"
            raise invalid(SUBJECT_ACCESS_REVIEWS, "", [invalid_value("spec.resourceAttributes", None, why)])
        if isinstance(url, dict):
            attrs = Attributes(user, str(url.get("verb") or ""), path=str(url.get("path") or ""))
        else:
            assert isinstance(resource, dict)
            attrs = Attributes(
                user,
                str(resource.get("verb") or ""),
                group=str(resource.get("group") or ""),
                resource=str(resource.get("resource") or ""),
                subresource=str(resource.get("subresource") or ""),
                name=str(resource.get("name") or ""),
                namespace=str(resource.get("namespace") or ""),
            )
        allowed, reason = self.authorizer.decide(attrs)
        return {"allowed": allowed, "reason": reason} if reason else {"allowed": allowed}


def _subject(spec: Obj) -> UserInfo:
    user, groups = spec.get("user") or "", [str(g) for g in spec.get("groups") or []]
    if not user and not groups:
        why = "at least one of user or group must be specified"
        raise invalid(SUBJECT_ACCESS_REVIEWS, "", [invalid_value("spec.user", "", why)])
    extra = {str(k): [str(x) for x in v] for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(str(user), str(spec.get("uid") or ""), tuple(groups), extra)
