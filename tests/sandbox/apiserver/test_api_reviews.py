"""TokenReview, SubjectAccessReview and SelfSubjectAccessReview against stored RBAC objects, asked the way
clients ask: real kubectl (`auth can-i`, `create -f`) and plain HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from rollout_lab.sandbox.apiserver import SandboxApiServer
from rollout_lab.sandbox.apiserver.rbac import Attributes, UserInfo, rule_allows
from tests.sandbox.apiserver.test_api_kubectl import KUBECTL, Kubectl

PROMETHEUS = UserInfo("system:serviceaccount:monitoring:prometheus", "u-1", ("system:serviceaccounts",))
STRANGER = UserInfo("system:serviceaccount:team-a:app", "u-2", ("system:serviceaccounts",))
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
TOKENS = {"prom-token": PROMETHEUS, "stranger-token": STRANGER}

METRICS_READER = """\
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-reader}
rules:
  - nonResourceURLs: ["/metrics"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus-reads-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-reader}
subjects:
  - {kind: ServiceAccount, name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: team-a}
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: ["creds"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app-reads-creds, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects:
  - {kind: ServiceAccount, name: app}
"""


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[tuple[SandboxApiServer, Kubectl]]:
    """A sandbox that knows TOKENS; kubectl reaches it as its admin (no token over plain HTTP)."""
    async with SandboxApiServer(users=TOKENS) as srv:
        yield srv, Kubectl(srv.write_kubeconfig(tmp_path / "admin"), tmp_path / "cache")


async def _post(srv: SandboxApiServer, path: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.post(srv.url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


def _sar(user: UserInfo, **attrs: Any) -> dict[str, Any]:
    spec = {"user": user.username, "groups": list(user.groups), "uid": user.uid, **attrs}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
TOKEN_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


async def test_a_token_review_names_the_tokens_user(sandbox: tuple[SandboxApiServer, Kubectl]) -> None:
    srv, _ = sandbox
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "prom-token"},
    }
    code, answer = await _post(srv, TOKEN_PATH, review, "sandbox")
    assert code == 201
    assert answer["status"] == {"authenticated": True, "user": PROMETHEUS.as_status()}
    review["spec"] = {"token": "forged"}
    code, answer = await _post(srv, TOKEN_PATH, review, "sandbox")
    assert code == 201 and answer["status"]["authenticated"] is False
    assert (await _post(srv, TOKEN_PATH, {"spec": {}}, "sandbox"))[0] == 422


async def test_with_a_token_set_only_known_tokens_get_in() -> None:
    async with SandboxApiServer(token="admin-token", users=TOKENS) as srv:
        review = {"spec": {"token": "stranger-token"}}
        assert (await _post(srv, TOKEN_PATH, review, "forged"))[0] == 401
        code, answer = await _post(srv, TOKEN_PATH, review, "prom-token")
        assert code == 201 and answer["status"]["user"]["username"] == STRANGER.username


async def test_access_follows_the_stored_bindings(sandbox: tuple[SandboxApiServer, Kubectl]) -> None:
    srv, admin = sandbox
    await admin.run("apply", "-f", "-", stdin=METRICS_READER)
    metrics = {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}
    code, answer = await _post(srv, SAR_PATH, _sar(PROMETHEUS, **metrics), "sandbox")
    assert code == 201 and answer["status"]["allowed"] is True
    assert "prometheus-reads-metrics" in answer["status"]["reason"]
    _, answer = await _post(srv, SAR_PATH, _sar(STRANGER, **metrics), "sandbox")
    assert answer["status"] == {"allowed": False}
    # a RoleBinding grants in its namespace only, and resourceNames limit it
    secret = {"namespace": "team-a", "verb": "get", "resource": "secrets", "name": "creds"}
    _, answer = await _post(srv, SAR_PATH, _sar(STRANGER, resourceAttributes=secret), "sandbox")
    assert answer["status"]["allowed"] is True
    for other in ({"name": "other"}, {"namespace": "team-b"}, {"verb": "list", "name": ""}):
        ask = _sar(STRANGER, resourceAttributes={**secret, **other})
        assert (await _post(srv, SAR_PATH, ask, "sandbox"))[1]["status"]["allowed"] is False, other
    # once the binding is gone, so is the grant
    await admin.run("delete", "clusterrolebinding", "prometheus-reads-metrics")
    _, answer = await _post(srv, SAR_PATH, _sar(PROMETHEUS, **metrics), "sandbox")
    assert answer["status"]["allowed"] is False


async def test_a_review_needs_a_subject_and_one_kind_of_attributes(
    sandbox: tuple[SandboxApiServer, Kubectl],
) -> None:
    srv, _ = sandbox
    nobody = {"spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}
    code, answer = await _post(srv, SAR_PATH, nobody, "sandbox")
    assert code == 422 and "at least one of user or group" in answer["message"]
    both = _sar(PROMETHEUS, nonResourceAttributes={"path": "/x", "verb": "get"}, resourceAttributes={})
    assert (await _post(srv, SAR_PATH, both, "sandbox"))[0] == 422


async def test_a_self_review_asks_for_the_callers_own_rights(
    sandbox: tuple[SandboxApiServer, Kubectl],
) -> None:
    srv, admin = sandbox
    await admin.run("apply", "-f", "-", stdin=METRICS_READER)
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    ask = {"spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}
    assert (await _post(srv, path, ask, "prom-token"))[1]["status"]["allowed"] is True
    assert (await _post(srv, path, ask, "stranger-token"))[1]["status"]["allowed"] is False
    # kubectl sends no bearer token over plain HTTP, so through kubectl the sandbox sees its admin
    _, out, _ = await admin.run("auth", "can-i", "delete", "ksvc", "--all-namespaces")
    assert out.strip() == "yes"


async def test_kubectl_lists_the_kinds_and_refuses_to_read_a_review(
    sandbox: tuple[SandboxApiServer, Kubectl],
) -> None:
    _, admin = sandbox
    _, out, _ = await admin.run("api-resources", "--api-group=authorization.k8s.io", "-o", "name")
    assert set(out.split()) == {
        "selfsubjectaccessreviews.authorization.k8s.io",
        "subjectaccessreviews.authorization.k8s.io",
    }
    _, out, _ = await admin.run("api-resources", "--api-group=rbac.authorization.k8s.io", "-o", "name")
    assert "clusterroles.rbac.authorization.k8s.io" in out.split()
    code, _, err = await admin.run("get", "tokenreviews", check=False)
    assert code != 0 and "(MethodNotAllowed)" in err, err
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "prom-token"},
    }
    _, out, _ = await admin.run("create", "-f", "-", "-o", "json", stdin=yaml.safe_dump(review))
    assert json.loads(out)["status"]["user"]["username"] == PROMETHEUS.username


@pytest.mark.parametrize(
    ("rule", "allowed"),
    [
        ({"verbs": ["get"], "nonResourceURLs": ["/metrics"]}, True),
        ({"verbs": ["*"], "nonResourceURLs": ["/met*"]}, True),
        ({"verbs": ["get"], "nonResourceURLs": ["/metrics/extra"]}, False),
        ({"verbs": ["list"], "nonResourceURLs": ["/metrics"]}, False),
        ({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}, False),
    ],
)
def test_non_resource_rules(rule: dict[str, Any], allowed: bool) -> None:
    attrs = Attributes(PROMETHEUS, "get", path="/metrics")
    assert rule_allows(rule, attrs) is allowed
