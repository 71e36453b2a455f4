"""Who may read /metrics, when the admins ask for it (`--metrics-auth kubernetes`).

The controller's metrics name every team's Services and rollouts, so a cluster may want them read only
by its monitoring. As kube-rbac-proxy and controller-runtime's metrics filter do, the request's bearer
token goes to the API server twice: a TokenReview says whose it is, then a SubjectAccessReview asks whether
that identity may `get` the non-resource URL `/metrics` (granted by a ClusterRole with
`nonResourceURLs: ["/metrics"]`, which the chart renders for the admins to bind). No token: 401; a token the
API server does not know: 401; known but not allowed: 403; the API server unreachable: 503 (a scrape
failure, never an open door).

Answers are cached by the token's hash (allowed for a minute, refused for ten seconds), so a scrape every
15 s costs the API server two small requests a minute; at most `max_reviews` reviews run at once, so a
flood of made-up tokens cannot turn into a flood on the API server. Tokens are never logged."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from rollout.kube.client import KubeClient, KubeError, Obj
from rollout.kube.resources import SUBJECT_ACCESS_REVIEWS, TOKEN_REVIEWS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Verdict:
    status: int  # 200 allowed; 401, 403, 503 refused
    reason: str

    @property
    def allowed(self) -> bool:
        return self.status == 200


class Reviewer(Protocol):
    """The API server's two questions; a failed call raises KubeError."""

    async def review_token(self, token: str) -> Obj: ...

    async def review_access(self, user: Obj, path: str) -> Obj: ...


class KubeReviewer:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def review_token(self, token: str) -> Obj:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        return await self.client.create_unfenced(TOKEN_REVIEWS, None, body)

    async def review_access(self, user: Obj, path: str) -> Obj:
        spec: Obj = {
            "user": user.get("username", ""),
            "uid": user.get("uid", ""),
            "groups": user.get("groups") or [],
            "nonResourceAttributes": {"path": path, "verb": "get"},
        }
        if user.get("extra"):
            spec["extra"] = user["extra"]
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        return await self.client.create_unfenced(SUBJECT_ACCESS_REVIEWS, None, body)


def bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class MetricsAuth:
    """Decides a request for `path` from its Authorization header (see the module docstring)."""

    def __init__(
        self,
        reviewer: Reviewer,
        *,
        path: str = "/metrics",
        allowed_ttl: float = 60.0,
        refused_ttl: float = 10.0,
        max_entries: int = 1024,
        max_reviews: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reviewer = reviewer
        self.path = path
        self.allowed_ttl = allowed_ttl
        self.refused_ttl = refused_ttl
        self.max_entries = max_entries
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, Verdict]] = OrderedDict()
        self._reviews = asyncio.Semaphore(max_reviews)

    async def check(self, authorization: str | None) -> Verdict:
        token = bearer(authorization)
        if token is None:
            return Verdict(401, "no bearer token: send the scraper's ServiceAccount token")
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self.clock():
            self._cache.move_to_end(key)
            return cached[1]
        async with self._reviews:
            verdict = await self._review(token)
        if verdict.status != 503:
            ttl = self.allowed_ttl if verdict.allowed else self.refused_ttl
            self._cache[key] = (self.clock() + ttl, verdict)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return verdict

    async def _review(self, token: str) -> Verdict:
        try:
            answer = (await self.reviewer.review_token(token)).get("status") or {}
            if not answer.get("authenticated"):
                return Verdict(401, "the API server does not know this token")
            user = answer.get("user") or {}
            access = (await self.reviewer.review_access(user, self.path)).get("status") or {}
        except KubeError as err:
            log.warning("metrics auth: review failed", status=err.status, error=err.reason)
            return Verdict(503, f"could not ask the API server ({err.status} {err.reason})")
        name = str(user.get("username", ""))
        if access.get("allowed") and not access.get("denied"):
            return Verdict(200, f"{name} may get {self.path}")
        log.info("metrics auth: refused", user=name, path=self.path)
        return Verdict(403, f'{name} may not get {self.path}: bind the ClusterRole that grants "get" on it')
