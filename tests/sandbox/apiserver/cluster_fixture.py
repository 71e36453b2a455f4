"""The `cluster` fixture of the API conformance suite (registered by conftest.py): the sandbox API server by default, or a real cluster
when ROLLOUT_CONFORMANCE_REAL_CLUSTER=1 and KUBECONFIG points to a reachable one (skipped otherwise).

Each test gets its own namespace and a kubernetes-asyncio ApiClient; `cluster.raw(...)` sends a request the
typed client cannot express (Accept headers, patch types, query parameters)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from rollout_lab.sandbox.apiserver import SandboxApiServer

REAL_CLUSTER_ENV = "ROLLOUT_CONFORMANCE_REAL_CLUSTER"
KSVC = ("serving.knative.dev", "v1", "services")


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Cluster:
    api: client.ApiClient
    namespace: str
    kubeconfig: str
    sandbox: SandboxApiServer | None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def require_sandbox(self) -> SandboxApiServer:
        if self.sandbox is None:
            pytest.skip("needs the sandbox API server (fault injection or history control)")
        return self.sandbox

    async def raw(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> Raw:
        headers = {"Accept": accept, "Content-Type": content_type}
        try:
            resp = await self.api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
            )
            data = await resp.read()
            status, head = resp.status, dict(resp.headers)
        except ApiException as err:
            data, status, head = (err.body or b""), int(err.status), dict(err.headers or {})
        text = data.decode() if isinstance(data, bytes) else str(data)
        return Raw(status, head, json.loads(text) if text.strip().startswith(("{", "[")) else text)

    def ksvc(self, name: str, image: str = "example.com/app:1", **labels: str) -> dict[str, Any]:
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": self.namespace, "labels": dict(labels)},
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}},
        }

    async def patch_ksvc(
        self, name: str, body: Any, content_type: str, *, status: bool = False
    ) -> dict[str, Any]:
        """PATCH a ksvc (or its /status) with an explicit patch type."""
        method = (
            self.custom.patch_namespaced_custom_object_status
            if status
            else self.custom.patch_namespaced_custom_object
        )
        options: dict[str, Any] = {"_content_type": content_type}
        patched: dict[str, Any] = await method(*KSVC[:2], self.namespace, KSVC[2], name, body, **options)
        return patched

    async def create_ksvc(self, name: str, image: str = "example.com/app:1", **labels: str) -> dict[str, Any]:
        created: dict[str, Any] = await self.custom.create_namespaced_custom_object(
            *KSVC[:2], self.namespace, KSVC[2], self.ksvc(name, image, **labels)
        )
        return created


def status_of(err: ApiException) -> dict[str, Any]:
    """The `Status` object an error response carries."""
    body: dict[str, Any] = json.loads(err.body or b"{}")
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure", body
    assert body["code"] == err.status
    return body


async def _reachable(kubeconfig: str) -> client.ApiClient | None:
    try:
        api = await config.new_client_from_config(config_file=kubeconfig)
        await asyncio.wait_for(client.VersionApi(api).get_code(), 5)
    except Exception:
        return None
    return api


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    if os.environ.get(REAL_CLUSTER_ENV) == "1":
        kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        api = await _reachable(kubeconfig)
        if api is None:
            pytest.skip(f"{REAL_CLUSTER_ENV}=1 but no cluster is reachable through {kubeconfig}")
        async with api:
            async for c in _with_namespace(api, kubeconfig, None):
                yield c
        return
    async with SandboxApiServer(bookmark_interval=0.3) as srv:
        path = str(srv.write_kubeconfig(tmp_path / "kubeconfig"))
        api = await config.new_client_from_config(config_file=path)
        async with api:
            async for c in _with_namespace(api, path, srv):
                yield c


async def _with_namespace(
    api: client.ApiClient, kubeconfig: str, srv: SandboxApiServer | None
) -> AsyncIterator[Cluster]:
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield Cluster(api, name, kubeconfig, srv)
    finally:
        try:
            await core.delete_namespace(name)
        except ApiException as err:
            if err.status != 404:
                raise
