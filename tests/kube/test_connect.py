"""KubeClient.connect: a connection pool with room for requests beside the watches, and the environment's
proxy for the API server resolved once (no per-request environment or netrc lookups)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.kube.client import DEFAULT_CONNECTIONS, KubeClient, _env_proxy

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://api.example.test:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


async def test_pool_and_no_per_request_environment(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    client = await KubeClient.connect(str(kubeconfig))
    try:
        session = client.api.rest_client.pool_manager
        assert session.trust_env is False
        assert session.connector is not None and session.connector.limit >= DEFAULT_CONNECTIONS
        assert client.api.rest_client.proxy is None
    finally:
        await client.close()


async def test_environment_proxy_is_resolved_once(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    client = await KubeClient.connect(str(kubeconfig))
    try:
        assert client.api.rest_client.proxy == "http://proxy.example.test:3128"
    finally:
        await client.close()


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("NO_PROXY", "api.example.test")
    assert _env_proxy("https://api.example.test:6443") == (None, None)
    monkeypatch.setenv("NO_PROXY", "other.test")
    assert _env_proxy("https://api.example.test:6443")[0] == "http://proxy.example.test:3128"
