"""Finding a real cluster with Knative for the end-to-end suite, and talking to it.

The suite runs only when a kubeconfig is found (KUBECONFIG, else ~/.kube/config) and its cluster answers
with the serving.knative.dev API group; otherwise every e2e test is skipped with the reason. Settings come
from the environment (defaults fit hack/kind-up.sh):

    E2E_IMAGE           controller image the cluster can pull      dev.local/knative-rollout:<version>
    E2E_INGRESS         where Knative's ingress answers             http://127.0.0.1:8080
    E2E_DOMAIN          Knative's domain (config-domain)            127.0.0.1.sslip.io
    E2E_PROMETHEUS_URL  Prometheus as the controller sees it        http://prometheus-operated.monitoring.svc:9090
    E2E_DIALECT         metric dialect of the cluster               knative-otel
"""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
Obj = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    kubeconfig: Path
    image: str
    ingress: str
    domain: str
    prometheus_url: str
    dialect: str

    @property
    def ingress_is_loopback(self) -> bool:
        return urlsplit(self.ingress).hostname in {"127.0.0.1", "localhost", "::1"}


def kubeconfig_path(environ: Mapping[str, str], home: Path) -> Path | None:
    """The kubeconfig kubectl would use: the first file of KUBECONFIG, else ~/.kube/config."""
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates = [Path(p) for p in listed] or [home / ".kube" / "config"]
    return next((p for p in candidates if p.is_file()), None)


def settings_from(environ: Mapping[str, str], home: Path) -> Settings | str:
    """The suite's settings, or why it cannot run."""
    path = kubeconfig_path(environ, home)
    if path is None:
        return "no kubeconfig (KUBECONFIG or ~/.kube/config): no cluster to run against (hack/kind-up.sh makes one)"
    return Settings(
        kubeconfig=path,
        image=environ.get("E2E_IMAGE", f"dev.local/knative-rollout:{VERSION}"),
        ingress=environ.get("E2E_INGRESS", "http://127.0.0.1:8080").rstrip("/"),
        domain=environ.get("E2E_DOMAIN", "127.0.0.1.sslip.io"),
        prometheus_url=environ.get("E2E_PROMETHEUS_URL", "http://prometheus-operated.monitoring.svc:9090"),
        dialect=environ.get("E2E_DIALECT", "knative-otel"),
    )


class Kube:
    """Plain-JSON REST calls on kubernetes-asyncio's ApiClient (any kind, our CRDs and Knative's included)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    @classmethod
    async def connect(cls, kubeconfig: Path) -> Kube:
        configuration = Configuration()
        await kconfig.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        return cls(ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        seconds: float = 30,
    ) -> Any:
        return await self.api.call_api(
            path,
            method,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            response_types_map={200: "object", 201: "object", 202: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=seconds,
        )

    async def get(self, path: str) -> Obj | None:
        try:
            result: Obj = await self.call("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def items(self, path: str) -> list[Obj]:
        listed = await self.call("GET", path)
        items: list[Obj] = listed.get("items") or []
        return items

    async def create(self, path: str, body: Obj) -> Obj:
        result: Obj = await self.call("POST", path, body)
        return result

    async def merge_patch(self, path: str, patch: Obj) -> Obj:
        result: Obj = await self.call("PATCH", path, patch, content_type="application/merge-patch+json")
        return result

    async def delete(self, path: str) -> None:
        try:
            await self.call("DELETE", path, {"propagationPolicy": "Foreground", "gracePeriodSeconds": 0})
        except ApiException as exc:
            if exc.status != 404:
                raise


async def probe(kubeconfig: Path, within: float = 5.0) -> str | None:
    """None when the cluster answers and serves serving.knative.dev/v1; else why not (for the skip)."""
    try:
        kube = await Kube.connect(kubeconfig)
    except Exception as exc:  # an unreadable kubeconfig is a reason to skip, with its message
        return f"kubeconfig {kubeconfig} cannot be used: {exc}"
    try:
        group = await asyncio.wait_for(kube.get("/apis/serving.knative.dev"), within)
    except (TimeoutError, OSError, ApiException) as exc:
        return f"the cluster of {kubeconfig} is not reachable: {type(exc).__name__} {exc}"
    except Exception as exc:  # aiohttp errors and the like: not reachable either
        return f"the cluster of {kubeconfig} is not reachable: {type(exc).__name__} {exc}"
    finally:
        await kube.close()
    if group is None:
        return f"the cluster of {kubeconfig} has no Knative Serving (API group serving.knative.dev)"
    versions = [v.get("version") for v in group.get("versions", [])]
    if "v1" not in versions:
        return f"Knative Serving serves {json.dumps(versions)}, not v1"
    return None
