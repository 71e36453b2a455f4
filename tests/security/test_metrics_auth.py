"""/metrics for callers the API server knows and allows, when the admins turn it on (--metrics-auth
kubernetes): a running controller against the sandbox, whose TokenReview and SubjectAccessReview answers
come from its token table and stored RBAC objects; over HTTPS with a certificate from a test CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import trustme

from rollout.controller.metrics_auth import MetricsAuth, Verdict
from rollout.kube.client import KubeError
from rollout_lab.sandbox.apiserver.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, UserInfo
from tests.integration.harness import controller, sandbox

PROMETHEUS = UserInfo("system:serviceaccount:monitoring:prometheus", "u-1", ("system:serviceaccounts",))
STRANGER = UserInfo("system:serviceaccount:team-a:app", "u-2", ("system:serviceaccounts",))
READER: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "knative-rollout-metrics-reader"},
    "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
}
BINDING: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "prometheus-reads-knative-rollout"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": READER["metadata"]["name"],
    },
    "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}],
}


@pytest.fixture
def tls() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    """(the server's context, a client context that trusts only the test CA)."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    yield server, client


async def _get(url: str, client_tls: ssl.SSLContext, token: str | None = None) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers, ssl=client_tls) as r:
        return r.status, await r.text(), r.headers.get("WWW-Authenticate")


async def test_only_an_allowed_identity_reads_metrics(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_tls, client_tls = tls
    async with sandbox() as cluster:
        cluster.env.api.identities.add("prom-token", PROMETHEUS)
        cluster.env.api.identities.add("stranger-token", STRANGER)
        cluster.store.create(CLUSTER_ROLES, READER)
        cluster.store.create(CLUSTER_ROLE_BINDINGS, BINDING)
        async with controller(cluster, metrics_port=0, metrics_auth=True, metrics_tls=server_tls) as ctl:
            assert ctl.health is not None and ctl.health.url.startswith("https://")
            url = ctl.health.url
            code, body, challenge = await _get(f"{url}/metrics", client_tls)
            assert (code, challenge) == (401, 'Bearer realm="metrics"') and "no bearer token" in body
            code, body, _ = await _get(f"{url}/metrics", client_tls, "forged")
            assert code == 401 and "does not know this token" in body
            code, body, _ = await _get(f"{url}/metrics", client_tls, "stranger-token")
            assert code == 403 and STRANGER.username in body and "ClusterRole" in body
            code, body, _ = await _get(f"{url}/metrics", client_tls, "prom-token")
            assert code == 200 and "knrollout_leader" in body
            # the kubelet's probes carry no token and stay open
            assert (await _get(f"{url}/healthz", client_tls))[:2] == (200, "ok")
            assert (await _get(f"{url}/readyz", client_tls))[:2] == (200, "ok")
            # a client that does not trust the CA does not get through the handshake
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await _get(f"{url}/healthz", ssl.create_default_context())


class FakeReviewer:
    def __init__(self, users: dict[str, UserInfo], allowed: set[str], fail: bool = False) -> None:
        self.users, self.allowed, self.fail = users, allowed, fail
        self.calls: list[str] = []

    async def review_token(self, token: str) -> dict[str, Any]:
        self.calls.append("token")
        if self.fail:
            raise KubeError(0, "ConnectionRefused", "the API server did not answer")
        user = self.users.get(token)
        if user is None:
            return {"status": {"authenticated": False}}
        return {"status": {"authenticated": True, "user": user.as_status()}}

    async def review_access(self, user: dict[str, Any], path: str) -> dict[str, Any]:
        self.calls.append(f"access {path}")
        return {"status": {"allowed": user["username"] in self.allowed}}


async def test_answers_are_cached_by_token_for_a_while() -> None:
    now = [0.0]
    reviewer = FakeReviewer({"p": PROMETHEUS, "s": STRANGER}, {PROMETHEUS.username})
    auth = MetricsAuth(reviewer, clock=lambda: now[0])
    assert (await auth.check("Bearer p")).status == 200
    assert (await auth.check("bearer p")).status == 200
    assert reviewer.calls == ["token", "access /metrics"]
    assert (await auth.check("Bearer s")).status == 403
    now[0] = 30.0  # a refusal is remembered for 10 s, an allowance for 60 s
    assert (await auth.check("Bearer s")).status == 403 and len(reviewer.calls) == 6
    assert (await auth.check("Bearer p")).status == 200 and len(reviewer.calls) == 6
    now[0] = 61.0
    assert (await auth.check("Bearer p")).status == 200 and len(reviewer.calls) == 8


async def test_no_answer_from_the_api_server_is_a_refusal_not_remembered() -> None:
    reviewer = FakeReviewer({"p": PROMETHEUS}, {PROMETHEUS.username}, fail=True)
    auth = MetricsAuth(reviewer)
    verdict = await auth.check("Bearer p")
    assert verdict == Verdict(503, "could not ask the API server (0 ConnectionRefused)")
    reviewer.fail = False
    assert (await auth.check("Bearer p")).status == 200


@pytest.mark.parametrize("header", [None, "", "Basic cDpw", "Bearer", "Bearer   "])
async def test_no_bearer_token_is_refused_without_asking(header: str | None) -> None:
    reviewer = FakeReviewer({}, set())
    assert (await MetricsAuth(reviewer).check(header)).status == 401
    assert reviewer.calls == []


async def test_the_cache_is_bounded() -> None:
    users = {f"t{i}": UserInfo(f"u{i}") for i in range(10)}
    auth = MetricsAuth(FakeReviewer(users, set()), max_entries=4)
    for token in users:
        await auth.check(f"Bearer {token}")
    assert len(auth._cache) == 4
