"""The chart's RBAC equals the API calls the controller code makes.

Three layers, each derived from code rather than from a list kept in this test:
1. The instrument: `attributes()` maps HTTP requests to RBAC attributes the way the API server does, and a
   recording proxy in front of the sandbox API server records what a real kubernetes-asyncio client asks.
2. The controller's single door to the API (`rollout.kube.client.KubeClient`) refuses any call outside
   `rollout.kube.resources.CALLS`, so no rule may grant more; and every call site in the code that names a
   resource directly must be granted.
3. test_rbac_recorded.py: the controller itself runs against the sandbox through the recording proxy;
   every request it made must be allowed, and every rule must be backed by a request or a call site.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from tests.chart.rbac import RequestAttributes, allowed, attributes, grants, permissions, static_calls
from tests.chart.recorder import recording_proxy
from tests.chart.rendering import NAMESPACE, ROOT, Obj, render

CASES = [
    ("GET", "/api/v1/namespaces/shop/secrets/token", ("get", "", "secrets", "shop", "token")),
    ("GET", "/apis/serving.knative.dev/v1/services", ("list", "serving.knative.dev", "services", "", "")),
    (
        "GET",
        "/apis/serving.knative.dev/v1/namespaces/shop/services?watch=true&resourceVersion=5",
        ("watch", "serving.knative.dev", "services", "shop", ""),
    ),
    ("GET", "/api/v1/watch/namespaces/shop/events", ("watch", "", "events", "shop", "")),
    (
        "PATCH",
        "/apis/knrollout.dev/v1alpha1/namespaces/shop/rollouts/cart-00002/status",
        ("patch", "knrollout.dev", "rollouts/status", "shop", "cart-00002"),
    ),
    (
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/kr/leases/l",
        ("update", "coordination.k8s.io", "leases", "kr", "l"),
    ),
    ("POST", "/api/v1/namespaces/shop/events", ("create", "", "events", "shop", "")),
    (
        "DELETE",
        "/apis/knrollout.dev/v1alpha1/namespaces/shop/rollouts/x",
        ("delete", "knrollout.dev", "rollouts", "shop", "x"),
    ),
    (
        "DELETE",
        "/apis/knrollout.dev/v1alpha1/namespaces/shop/rollouts",
        ("deletecollection", "knrollout.dev", "rollouts", "shop", ""),
    ),
    ("GET", "/api/v1/namespaces/shop", ("get", "", "namespaces", "shop", "shop")),
    ("PUT", "/api/v1/namespaces/shop/finalize", ("update", "", "namespaces/finalize", "shop", "shop")),
]


@pytest.mark.parametrize(("method", "url", "expected"), CASES, ids=[f"{m} {u}" for m, u, _ in CASES])
def test_request_attributes_follow_the_api_server(method: str, url: str, expected: tuple[str, ...]) -> None:
    attrs = attributes(method, url)
    assert attrs is not None
    assert (attrs.verb, attrs.group, attrs.resource, attrs.namespace, attrs.name) == expected


def test_discovery_is_not_a_resource_request() -> None:
    for url in ("/version", "/api", "/apis", "/apis/knrollout.dev/v1alpha1", "/openapi/v3"):
        assert attributes("GET", url) is None


def test_resource_names_limit_a_grant() -> None:
    rules = [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["a"],
            "verbs": ["get"],
        }
    ]
    assert allowed(rules, RequestAttributes("get", "coordination.k8s.io", "leases", "ns", "a"))
    assert not allowed(rules, RequestAttributes("get", "coordination.k8s.io", "leases", "ns", "b"))
    assert not allowed(rules, RequestAttributes("list", "coordination.k8s.io", "leases", "ns"))


async def test_the_proxy_records_what_a_real_client_asks(tmp_path: Path) -> None:
    """kubernetes-asyncio through the recording proxy to the sandbox API server: the calls go through (a watch
    streams), and each is recorded with the attributes the API server's authorizer would check."""
    from rollout_lab.sandbox.apiserver.server import SandboxApiServer

    async with SandboxApiServer() as server, recording_proxy(server.url) as proxy:
        config = Configuration(host=proxy.url)
        config.api_key = {"BearerToken": "sandbox"}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        async with ApiClient(config) as api:

            async def call(method: str, path: str, **kw: Any) -> Any:
                return await api.call_api(
                    path,
                    method,
                    header_params={
                        "Accept": "application/json",
                        "Content-Type": kw.pop("content_type", "application/json"),
                    },
                    response_types_map={200: "object", 201: "object"},
                    auth_settings=["BearerToken"],
                    _return_http_data_only=True,
                    **kw,
                )

            listed = await call("GET", "/apis/serving.knative.dev/v1/namespaces/default/services")
            assert listed["items"] == []
            event = {
                "metadata": {"generateName": "x-"},
                "involvedObject": {"kind": "Service", "name": "x"},
                "reason": "Test",
                "message": "m",
                "type": "Normal",
            }
            created = await call("POST", "/api/v1/namespaces/default/events", body=event)
            name = created["metadata"]["name"]
            await call(
                "PATCH",
                f"/api/v1/namespaces/default/events/{name}",
                body={"count": 2},
                content_type="application/merge-patch+json",
            )
            watched = await api.call_api(
                "/api/v1/namespaces/default/events",
                "GET",
                query_params=[("watch", "true"), ("resourceVersion", "0"), ("timeoutSeconds", 1)],
                auth_settings=["BearerToken"],
                _preload_content=False,
            )
            lines = [line async for line in watched.content]
            watched.close()
            assert any(name.encode() in line for line in lines)
    assert proxy.recording.permissions == {
        ("list", "serving.knative.dev", "services"),
        ("create", "", "events"),
        ("patch", "", "events"),
        ("watch", "", "events"),
    }


# ----------------------------------------------------------------------------------- rules vs the code


def _rules(values: dict[str, Any]) -> list[Obj]:
    return [rule for o in render(values) if o["kind"] in {"Role", "ClusterRole"} for rule in o["rules"]]


# leader election on, so that the Lease rules are rendered; readSecrets and metrics.auth on (both off by
# default)
HA: dict[str, Any] = {"replicas": 2, "rbac": {"readSecrets": True}, "metrics": {"auth": {"enabled": True}}}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(f"{name} is not in this checkout yet (the controller's Kubernetes adapters)")


def _resource_constants() -> dict[str, tuple[str, str]]:
    resources = _module("rollout.kube.resources")
    return {k: (v.group, v.plural) for k, v in vars(resources).items() if isinstance(v, resources.Resource)}


def test_rules_grant_exactly_what_the_client_may_send() -> None:
    """KubeClient refuses any request outside rollout.kube.resources.CALLS, so a grant outside CALLS could
    never be used (least privilege says drop it), and a call in CALLS the chart does not grant would be
    denied: the two are the same set (with leader election on and Secrets readable, as in HA)."""
    calls: frozenset[tuple[str, str, str]] = _module("rollout.kube.resources").CALLS
    namespaced = {**HA, "rbac": {"scope": "namespaced", "readSecrets": True}, "watchNamespaces": ["team-a"]}
    for values in (HA, namespaced):
        granted = permissions(_rules(values))
        assert (sorted(granted - calls), sorted(calls - granted)) == ([], [])


def test_every_call_site_in_the_code_is_granted() -> None:
    """Every call the code makes on a named resource (client.get(SECRETS, ...), an informer of REVISIONS,
    ...) is granted, rare paths included (an Event repeated, a Rollout that already exists)."""
    sites = static_calls(ROOT / "rollout", _resource_constants())
    assert sites, "no call sites found: has rollout.kube.client changed its method names?"
    granted = permissions(_rules(HA))
    missing = {perm: where for perm, where in sites.items() if perm not in granted}
    assert missing == {}, f"called in code but not granted: {missing}"


def test_lease_rules_name_the_controllers_lease() -> None:
    settings = _module("rollout.kube.leader").LeaseSettings()
    lease_grants = [g for g in grants(_rules(HA)) if g.permission[2] == "leases"]
    named = {g.permission[0]: g.names for g in lease_grants}
    assert named == {"get": {settings.name}, "update": {settings.name}, "create": frozenset()}


def test_rbac_is_scoped_to_what_the_controller_watches() -> None:
    objs = render({**HA, "rbac": {"scope": "namespaced", "readSecrets": True}, "watchNamespaces": ["team-a"]})
    where = {(o["kind"], o["metadata"]["namespace"]) for o in objs if o["kind"] in {"Role", "RoleBinding"}}
    assert where == {
        ("Role", "team-a"),
        ("RoleBinding", "team-a"),
        ("Role", NAMESPACE),
        ("RoleBinding", NAMESPACE),
    }


def test_metrics_auth_grants_the_two_reviews_only_when_asked() -> None:
    reviews = {
        ("create", "authentication.k8s.io", "tokenreviews"),
        ("create", "authorization.k8s.io", "subjectaccessreviews"),
    }
    assert not reviews & permissions(_rules({}))
    objs = render({"metrics": {"auth": {"enabled": True}}})
    assert reviews <= permissions(_rules({"metrics": {"auth": {"enabled": True}}}))
    reader = next(o for o in objs if o["metadata"]["name"].endswith("-metrics-reader"))
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    # nobody is bound to read them until the admins name a reader or turn on the ServiceMonitor
    assert not [
        o for o in objs if o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"].endswith("-reader")
    ]
