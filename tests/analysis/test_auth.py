"""Resolving a policy's Prometheus settings into a connection."""

from __future__ import annotations

import pytest

from rollout.analysis.auth import AuthError, resolve_connection, uses_secrets
from rollout.analysis.transport import parse_retry_after
from rollout.api.common import SecretKeyRef
from rollout.api.source import (
    BasicAuth,
    BearerToken,
    GrantedBearerToken,
    GrantedPrometheus,
    HeaderValue,
    PrometheusSource,
    TlsConfig,
)
from tests.analysis.conftest import DictSecrets

SECRETS = DictSecrets({("shop", "prom"): {"token": b"tok", "ca": b"PEM", "user": b"u", "password": b"p\n"}})


async def test_default_address_and_no_credentials() -> None:
    conn = await resolve_connection(PrometheusSource(), "shop", SECRETS, "http://prometheus:9090/")
    assert conn.address == "http://prometheus:9090" and conn.headers == () and conn.tls is None
    assert conn.timeout == 10.0


async def test_no_address_anywhere() -> None:
    with pytest.raises(AuthError, match="no default Prometheus address"):
        await resolve_connection(PrometheusSource(), "shop", SECRETS, None)


async def test_secrets_are_read_in_the_policy_namespace() -> None:
    spec = PrometheusSource(
        address="https://p", bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="prom", key="token"))
    )
    with pytest.raises(AuthError, match=r"Secret blog/prom"):
        await resolve_connection(spec, "blog", SECRETS, None)


async def test_basic_auth_password_keeps_inner_whitespace_only() -> None:
    spec = PrometheusSource(address="http://p", basic_auth=BasicAuth(secret_name="prom", username_key="user"))
    conn = await resolve_connection(spec, "shop", SECRETS, None)
    assert dict(conn.headers)["Authorization"] == "Basic dTpw"  # base64("u:p"): the trailing newline dropped


async def test_authorization_header_conflict() -> None:
    spec = PrometheusSource(
        address="http://p",
        bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="prom", key="token")),
        headers=[HeaderValue(name="Authorization", value="Bearer x")],
    )
    with pytest.raises(AuthError, match="keep one"):
        await resolve_connection(spec, "shop", SECRETS, None)


async def test_missing_token_file_of_a_granted_source() -> None:
    spec = GrantedPrometheus(address="http://p", bearer_token=GrantedBearerToken(file="/nonexistent/token"))
    with pytest.raises(AuthError, match=r"bearerToken.file: cannot read /nonexistent/token"):
        await resolve_connection(spec, "shop", SECRETS, None, granted=True)


def test_a_policy_cannot_name_a_file() -> None:
    with pytest.raises(ValueError, match="cannot name a file"):
        PrometheusSource.model_validate({"address": "http://p", "bearerToken": {"file": "/var/run/token"}})


async def test_policy_credentials_never_go_to_the_controllers_prometheus() -> None:
    spec = PrometheusSource(bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="prom", key="token")))
    with pytest.raises(AuthError, match="only to the policy's own address"):
        await resolve_connection(spec, "shop", SECRETS, "http://admins-prometheus:9090")


async def test_a_policy_reads_only_secrets_that_opted_in() -> None:
    private = DictSecrets({("shop", "db"): {"token": b"hunter2"}}, private=frozenset({("shop", "db")}))
    spec = PrometheusSource(
        address="http://p", bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="db", key="token"))
    )
    with pytest.raises(AuthError, match="has not opted in"):
        await resolve_connection(spec, "shop", private, None)
    # the same Secret named by an admin's ClusterMetricSource needs no opt-in
    granted = GrantedPrometheus(
        address="http://p",
        bearer_token=GrantedBearerToken(secret_key_ref=SecretKeyRef(name="db", key="token")),
    )
    conn = await resolve_connection(granted, "shop", private, None, granted=True)
    assert dict(conn.headers)["Authorization"] == "Bearer hunter2"


async def test_repr_hides_credentials() -> None:
    spec = PrometheusSource(
        address="https://p",
        bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="prom", key="token")),
        tls=TlsConfig(ca_secret_ref=SecretKeyRef(name="prom", key="ca")),
    )
    conn = await resolve_connection(spec, "shop", SECRETS, None)
    assert conn.tls is not None and conn.tls.ca_pem == b"PEM"
    assert "tok" not in repr(conn) and "Authorization" in repr(conn)


def test_uses_secrets() -> None:
    ref = SecretKeyRef(name="s", key="k")
    assert not uses_secrets(PrometheusSource(address="http://p"))
    token_file = GrantedBearerToken(file="/var/run/token")
    assert not uses_secrets(GrantedPrometheus(address="http://p", bearer_token=token_file))
    assert not uses_secrets(PrometheusSource(headers=[HeaderValue(name="X-Org", value="a")]))
    assert uses_secrets(PrometheusSource(bearer_token=BearerToken(secret_key_ref=ref)))
    assert uses_secrets(PrometheusSource(basic_auth=BasicAuth(secret_name="s")))
    assert uses_secrets(PrometheusSource(headers=[HeaderValue(name="X-Org", secret_key_ref=ref)]))
    assert uses_secrets(PrometheusSource(tls=TlsConfig(ca_secret_ref=ref)))
    assert not uses_secrets(PrometheusSource(tls=TlsConfig(insecure_skip_verify=True)))


def test_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
