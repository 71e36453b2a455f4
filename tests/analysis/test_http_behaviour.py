"""What the adapter sends and how it copes, against a scripted HTTP server on 127.0.0.1 (aiohttp): auth
headers, retries and their time bound, timeouts, non-Prometheus answers, TLS."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from rollout.analysis.keys import RevisionKey
from rollout.analysis.prometheus import PrometheusMetricSource, RetryPolicy
from rollout.analysis.source import CustomQuery, QueryStats
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
from rollout.engine.observations import Measurement, MeasurementError, Scalar
from tests.analysis.conftest import DictSecrets

KEY = RevisionKey("shop", "web-00002")
OK_BODY = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "42"]}]},
}


@dataclass
class Reply:
    status: int = 200
    body: str = json.dumps(OK_BODY)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class ScriptedServer:
    url: str
    replies: list[Reply]  # consumed in order; the last one repeats
    requests: list[dict[str, str]] = field(default_factory=list)


async def _serve(ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, ScriptedServer]:
    server = ScriptedServer("", [Reply()])

    async def handle(request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else {}
        query = str(form.get("query") or request.query.get("query", ""))
        server.requests.append(dict(request.headers) | {"query": query, "method": request.method})
        reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    app = web.Application()
    app.router.add_route("*", "/api/v1/query", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    return runner, server


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    runner, srv = await _serve()
    yield srv
    await runner.cleanup()


async def _measure(
    spec: PrometheusSource,
    secrets: DictSecrets | None = None,
    retry: RetryPolicy | None = None,
    stats: list[QueryStats] | None = None,
    promql: str = "vector(42)",
) -> Measurement:
    observer: Callable[[QueryStats], None] | None = stats.append if stats is not None else None
    source = PrometheusMetricSource(
        spec,
        "shop",
        secrets=secrets or DictSecrets({}),
        retry=retry,
        observer=observer,
        granted=isinstance(spec, GrantedPrometheus),
    )
    try:
        return (await source.query(CustomQuery(promql, frozenset({KEY}))))[KEY]
    finally:
        source.close()


# ---------------------------------------------------------------------------------------------- auth


async def test_bearer_token_from_secret(server: ScriptedServer) -> None:
    secrets = DictSecrets({("shop", "prom"): {"token": b"s3cr3t-token\n"}})
    spec = PrometheusSource(
        address=server.url, bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="prom", key="token"))
    )
    assert await _measure(spec, secrets) == Scalar(42.0)
    assert server.requests[-1]["Authorization"] == "Bearer s3cr3t-token"
    assert secrets.reads == [("shop", "prom", "token")]  # read in the policy's namespace


async def test_bearer_token_file_is_reread(server: ScriptedServer, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    spec = GrantedPrometheus(address=server.url, bearer_token=GrantedBearerToken(file=str(token)))
    await _measure(spec)
    token.write_text("rotated")
    await _measure(spec)
    assert [r["Authorization"] for r in server.requests] == ["Bearer first", "Bearer rotated"]


async def test_basic_auth_and_headers(server: ScriptedServer) -> None:
    secrets = DictSecrets(
        {
            ("shop", "prom-basic"): {"user": b"grafana", "pass": "p\u00e4ss:word".encode()},
            ("shop", "k"): {"v": b"key-1"},
        }
    )
    spec = PrometheusSource(
        address=server.url,
        basic_auth=BasicAuth(secret_name="prom-basic", username_key="user", password_key="pass"),
        headers=[
            HeaderValue(name="X-Scope-OrgID", value="tenant-a"),
            HeaderValue(name="X-Api-Key", secret_key_ref=SecretKeyRef(name="k", key="v")),
        ],
    )
    assert await _measure(spec, secrets) == Scalar(42.0)
    sent = server.requests[-1]
    assert sent["Authorization"] == "Basic " + base64.b64encode("grafana:p\u00e4ss:word".encode()).decode()
    assert sent["X-Scope-OrgID"] == "tenant-a"
    assert sent["X-Api-Key"] == "key-1"


async def test_missing_secret_is_an_error_and_sends_nothing(server: ScriptedServer) -> None:
    spec = PrometheusSource(
        address=server.url, bearer_token=BearerToken(secret_key_ref=SecretKeyRef(name="absent", key="token"))
    )
    got = await _measure(spec)
    assert isinstance(got, MeasurementError)
    assert "bearerToken" in got.message and "shop/absent" in got.message
    assert server.requests == []


async def test_header_with_line_break_is_refused(server: ScriptedServer) -> None:
    secrets = DictSecrets({("shop", "k"): {"v": b"a\r\nX-Injected: 1"}})
    spec = PrometheusSource(
        address=server.url,
        headers=[HeaderValue(name="X-Api-Key", secret_key_ref=SecretKeyRef(name="k", key="v"))],
    )
    got = await _measure(spec, secrets)
    assert isinstance(got, MeasurementError) and "control characters" in got.message
    assert server.requests == []


# ---------------------------------------------------------------------------------------------- retries

FAST = RetryPolicy(total_seconds=3.0, max_attempts=5, initial_backoff=0.02, max_backoff=0.1)


async def test_retries_5xx_then_succeeds(server: ScriptedServer) -> None:
    server.replies = [Reply(503, "upstream down"), Reply(502, "bad gateway"), Reply()]
    stats: list[QueryStats] = []
    assert await _measure(PrometheusSource(address=server.url), retry=FAST, stats=stats) == Scalar(42.0)
    assert len(server.requests) == 3
    assert stats[-1].attempts == 3 and stats[-1].outcome == "ok"


async def test_429_waits_for_retry_after(server: ScriptedServer) -> None:
    server.replies = [Reply(429, "slow down", {"Retry-After": "1"}), Reply()]
    started = time.monotonic()
    assert await _measure(PrometheusSource(address=server.url), retry=FAST) == Scalar(42.0)
    assert time.monotonic() - started >= 1.0
    assert len(server.requests) == 2


async def test_retry_after_beyond_the_budget_stops_at_once(server: ScriptedServer) -> None:
    server.replies = [Reply(429, "slow down", {"Retry-After": "30"}), Reply()]
    started = time.monotonic()
    got = await _measure(PrometheusSource(address=server.url), retry=FAST)
    assert isinstance(got, MeasurementError) and "rate limited" in got.message
    assert time.monotonic() - started < 1.0
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_4xx_is_not_retried(server: ScriptedServer, status: int) -> None:
    body = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})
    server.replies = [Reply(status, body)]
    stats: list[QueryStats] = []
    got = await _measure(PrometheusSource(address=server.url), retry=FAST, stats=stats)
    assert isinstance(got, MeasurementError) and f"HTTP {status}" in got.message
    assert len(server.requests) == 1 and stats[-1].error == "http_4xx"


async def test_persistent_5xx_gives_up_after_max_attempts(server: ScriptedServer) -> None:
    server.replies = [Reply(500, "boom")]
    got = await _measure(PrometheusSource(address=server.url), retry=FAST)
    assert isinstance(got, MeasurementError) and "HTTP 500" in got.message
    assert len(server.requests) == FAST.max_attempts


async def test_slow_server_is_bounded_by_the_total_budget(server: ScriptedServer) -> None:
    server.replies = [Reply(delay=5.0)]
    budget = RetryPolicy(total_seconds=1.0, max_attempts=10, initial_backoff=0.02, max_backoff=0.05)
    stats: list[QueryStats] = []
    started = time.monotonic()
    got = await _measure(PrometheusSource(address=server.url, timeout=0.3), retry=budget, stats=stats)
    elapsed = time.monotonic() - started
    assert isinstance(got, MeasurementError) and stats[-1].error == "timeout"
    assert stats[-1].attempts >= 2  # timeouts are retried ...
    assert elapsed < 1.5  # ... but never past the budget (plus scheduling slack)


async def test_non_prometheus_answer_is_an_error(server: ScriptedServer) -> None:
    server.replies = [Reply(200, "<html>login</html>")]
    got = await _measure(PrometheusSource(address=server.url), retry=FAST)
    assert isinstance(got, MeasurementError) and "not a Prometheus API answer" in got.message
    assert len(server.requests) == 1


async def test_observer_failure_does_not_break_the_measurement(server: ScriptedServer) -> None:
    def broken(_: QueryStats) -> None:
        raise RuntimeError("metrics registry gone")

    source = PrometheusMetricSource(
        PrometheusSource(address=server.url), "shop", secrets=DictSecrets({}), observer=broken
    )
    try:
        assert (await source.query(CustomQuery("vector(42)", frozenset({KEY}))))[KEY] == Scalar(42.0)
    finally:
        source.close()


# ---------------------------------------------------------------------------------------------- TLS

SERVER_NAME = "prometheus.monitoring.svc"


@dataclass
class TlsSetup:
    ca: trustme.CA
    server: ScriptedServer
    secrets: DictSecrets


async def _tls_server(require_client_cert: bool) -> tuple[web.AppRunner, TlsSetup]:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(SERVER_NAME).configure_cert(context)
    if require_client_cert:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    runner, srv = await _serve(context)
    client = ca.issue_cert("rollout-controller")
    secrets = DictSecrets(
        {
            ("shop", "prom-tls"): {
                "ca.crt": ca.cert_pem.bytes(),
                "tls.crt": client.cert_chain_pems[0].bytes(),
                "tls.key": client.private_key_pem.bytes(),
            }
        }
    )
    return runner, TlsSetup(ca, srv, secrets)


@pytest.fixture
async def tls() -> AsyncIterator[TlsSetup]:
    runner, setup = await _tls_server(require_client_cert=False)
    yield setup
    await runner.cleanup()


@pytest.fixture
async def mtls() -> AsyncIterator[TlsSetup]:
    runner, setup = await _tls_server(require_client_cert=True)
    yield setup
    await runner.cleanup()


def _ref(key: str) -> SecretKeyRef:
    return SecretKeyRef(name="prom-tls", key=key)


async def test_tls_with_ca_and_server_name(tls: TlsSetup) -> None:
    spec = PrometheusSource(
        address=tls.server.url, tls=TlsConfig(ca_secret_ref=_ref("ca.crt"), server_name=SERVER_NAME)
    )
    assert await _measure(spec, tls.secrets) == Scalar(42.0)


async def test_tls_name_mismatch_is_refused_without_retry(tls: TlsSetup) -> None:
    stats: list[QueryStats] = []
    spec = PrometheusSource(address=tls.server.url, tls=TlsConfig(ca_secret_ref=_ref("ca.crt")))
    got = await _measure(spec, tls.secrets, retry=FAST, stats=stats)
    assert isinstance(got, MeasurementError) and "TLS" in got.message
    assert stats[-1].attempts == 1 and tls.server.requests == []


async def test_tls_unknown_ca_is_refused(tls: TlsSetup) -> None:
    spec = PrometheusSource(address=tls.server.url, tls=TlsConfig(server_name=SERVER_NAME))
    got = await _measure(spec, tls.secrets, retry=FAST)
    assert isinstance(got, MeasurementError) and "TLS" in got.message
    assert tls.server.requests == []


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
async def test_tls_insecure_skip_verify(tls: TlsSetup) -> None:
    spec = PrometheusSource(address=tls.server.url, tls=TlsConfig(insecure_skip_verify=True))
    assert await _measure(spec, tls.secrets) == Scalar(42.0)


async def test_mutual_tls_sends_the_client_certificate(mtls: TlsSetup) -> None:
    with_cert = TlsConfig(
        ca_secret_ref=_ref("ca.crt"),
        cert_secret_ref=_ref("tls.crt"),
        key_secret_ref=_ref("tls.key"),
        server_name=SERVER_NAME,
    )
    assert await _measure(PrometheusSource(address=mtls.server.url, tls=with_cert), mtls.secrets) == Scalar(
        42.0
    )
    without = TlsConfig(ca_secret_ref=_ref("ca.crt"), server_name=SERVER_NAME)
    got = await _measure(PrometheusSource(address=mtls.server.url, tls=without), mtls.secrets, retry=FAST)
    assert isinstance(got, MeasurementError)
    assert len(mtls.server.requests) == 1  # only the query that presented a certificate got through


async def test_unusable_tls_material_is_an_error(tls: TlsSetup) -> None:
    secrets = DictSecrets(
        {("shop", "prom-tls"): {"ca.crt": b"not a certificate", "tls.crt": b"x", "tls.key": b"y"}}
    )
    for config in (
        TlsConfig(ca_secret_ref=_ref("ca.crt")),
        TlsConfig(insecure_skip_verify=True, cert_secret_ref=_ref("tls.crt"), key_secret_ref=_ref("tls.key")),
    ):
        got = await _measure(PrometheusSource(address=tls.server.url, tls=config), secrets)
        assert isinstance(got, MeasurementError) and "unusable certificate" in got.message
    assert tls.server.requests == []


# ------------------------------------------------------------------------------------------ long queries


def _long(terms: int) -> str:
    """A query with a long revision filter, as a wide batch has: ~95 bytes per term once URL-encoded."""
    return "vector(42) or " + " or ".join(f'x{{revision_name=~"{"r" * 60}-{i:05d}"}}' for i in range(terms))


LONG = _long(150)  # ~14 KiB: beyond the 8 KiB request line of a proxy's default buffers (and aiohttp's)
MEDIUM = _long(70)  # ~6.6 KiB: sent as POST, and still within 8 KiB as GET


async def test_a_short_query_is_sent_as_get(server: ScriptedServer) -> None:
    assert await _measure(PrometheusSource(address=server.url)) == Scalar(42.0)
    assert server.requests[-1]["method"] == "GET" and server.requests[-1]["query"] == "vector(42)"


async def test_a_long_query_is_sent_in_a_form_body(server: ScriptedServer) -> None:
    assert await _measure(PrometheusSource(address=server.url), promql=LONG) == Scalar(42.0)
    assert len(server.requests) == 1
    assert server.requests[0]["method"] == "POST" and server.requests[0]["query"] == LONG


@pytest.mark.parametrize("status", [403, 405])  # 403: a kube-rbac-proxy granting `get` but not `create`
async def test_a_long_query_refused_as_post_is_sent_again_as_get(server: ScriptedServer, status: int) -> None:
    server.replies = [Reply(status, "refused"), Reply()]
    assert await _measure(PrometheusSource(address=server.url), retry=FAST, promql=MEDIUM) == Scalar(42.0)
    assert [r["method"] for r in server.requests] == ["POST", "GET"]
    assert server.requests[1]["query"] == MEDIUM
