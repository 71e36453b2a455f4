"""A hostile policy's metric source: no file of the pod, no Secret that did not opt in, no Secret of another
namespace, no year-long timeouts, no answer past the size cap, no redirect carrying credentials, and one
tenant's slow Prometheus never starves another's queries. A listener on 127.0.0.1 stands in for "the
address the policy names" and records every credential that reaches it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from rollout.analysis import transport
from rollout.analysis.keys import RevisionKey
from rollout.analysis.prometheus import PrometheusSources, RetryPolicy
from rollout.analysis.source import CustomQuery, SourceRef
from rollout.api.load import parse_cluster_source, parse_policy_spec
from rollout.api.source import ClusterMetricSourceSpec, MetricSource, PrometheusSource
from rollout.engine.observations import MeasurementError, Scalar
from tests.analysis.conftest import DictSecrets
from tests.local_http import serving

ANSWER = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "7"]}]},
}
TEAM_A = RevisionKey("team-a", "web-00002")
TEAM_B = RevisionKey("team-b", "api-00002")


@dataclass
class Listener:
    url: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)  # headers of every request, by path
    delay: float = 0.0
    body: bytes = json.dumps(ANSWER).encode()

    def credentials(self) -> list[str]:
        return [h.get("Authorization", "") for h in self.seen if h.get("Authorization")]


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    state = Listener()

    async def query(request: web.Request) -> web.Response:
        state.seen.append(dict(request.headers) | {"path": request.path})
        if state.delay:
            await asyncio.sleep(state.delay)
        return web.Response(body=state.body, content_type="application/json")

    async def moved(request: web.Request) -> web.Response:
        state.seen.append(dict(request.headers) | {"path": request.path})
        raise web.HTTPTemporaryRedirect("/elsewhere/api/v1/query")

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    app.router.add_get("/elsewhere/api/v1/query", query)
    app.router.add_get("/moved/api/v1/query", moved)
    async with serving(app, shutdown_timeout=0.2) as url:
        state.url = url
        yield state


SECRETS = DictSecrets(
    {
        ("team-a", "prom-token"): {"token": b"team-a-token"},
        ("team-a", "db"): {"password": b"hunter2"},
        ("monitoring", "reader"): {"token": b"admin-token"},
    },
    private=frozenset({("team-a", "db"), ("monitoring", "reader")}),
)


def sources(granted: dict[str, ClusterMetricSourceSpec] | None = None) -> PrometheusSources:
    table = granted or {}
    return PrometheusSources(
        SECRETS,
        granted=lambda name: table.get(name) or f"ClusterMetricSource {name} does not exist",
        retry=RetryPolicy(total_seconds=3.0, max_attempts=2, initial_backoff=0.01, max_backoff=0.02),
    )


async def ask(srcs: PrometheusSources, source: MetricSource, *keys: RevisionKey) -> dict[RevisionKey, Any]:
    ref = SourceRef.of(source, keys[0].namespace)
    return dict(await srcs(ref).query(CustomQuery("vector(7)", frozenset(keys))))


def problems(metric_source: dict[str, Any]) -> list[str]:
    spec = {"strategy": {"canary": {"steps": [{"weight": 50}]}}, "metricSource": metric_source}
    _, found = parse_policy_spec(spec)
    return [str(p) for p in found]


def test_no_policy_field_names_a_file() -> None:
    token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    found = problems({"prometheus": {"address": "http://p:9090", "bearerToken": {"file": token}}})
    assert any(
        p.startswith("spec.metricSource.prometheus.bearerToken.file:") and "ClusterMetricSource" in p
        for p in found
    ), found


def test_a_secret_of_another_namespace_cannot_be_named() -> None:
    ref = {"name": "prometheus-reader", "key": "token", "namespace": "monitoring"}
    found = problems({"prometheus": {"address": "http://p:9090", "bearerToken": {"secretKeyRef": ref}}})
    assert any(p.startswith("spec.metricSource.prometheus.bearerToken.secretKeyRef.namespace") for p in found)


def test_year_long_timeouts_are_refused() -> None:
    found = problems({"prometheus": {"address": "http://p:9090", "timeout": "8784h"}})
    assert any(p.startswith("spec.metricSource.prometheus.timeout:") for p in found), found


async def test_a_secret_that_did_not_opt_in_never_leaves(listener: Listener) -> None:
    srcs = sources()
    try:
        own = MetricSource(
            prometheus=PrometheusSource.model_validate(
                {"address": listener.url, "bearerToken": {"secretKeyRef": {"name": "db", "key": "password"}}}
            )
        )
        (answer,) = (await ask(srcs, own, TEAM_A)).values()
        assert isinstance(answer, MeasurementError) and "has not opted in" in answer.message
        assert "knrollout.dev/metric-credentials=true" in answer.message
        # the policy's own namespace only: team-a's name is looked up in team-a, never elsewhere
        other = MetricSource(
            prometheus=PrometheusSource.model_validate(
                {"address": listener.url, "bearerToken": {"secretKeyRef": {"name": "reader", "key": "token"}}}
            )
        )
        (answer,) = (await ask(srcs, other, TEAM_A)).values()
        assert isinstance(answer, MeasurementError) and "team-a/reader" in answer.message
        # an opted-in Secret of the policy's namespace is sent to the policy's own address
        opted = MetricSource(
            prometheus=PrometheusSource.model_validate(
                {
                    "address": listener.url,
                    "bearerToken": {"secretKeyRef": {"name": "prom-token", "key": "token"}},
                }
            )
        )
        assert await ask(srcs, opted, TEAM_A) == {TEAM_A: Scalar(7.0)}
        assert listener.credentials() == ["Bearer team-a-token"]
    finally:
        srcs.close()


async def test_granted_sources_serve_only_the_namespaces_they_name(listener: Listener) -> None:
    spec, found = parse_cluster_source(
        {
            "spec": {
                "prometheus": {
                    "address": listener.url,
                    "bearerToken": {"secretKeyRef": {"name": "reader", "key": "token"}},
                },
                "secretNamespace": "monitoring",
                "namespaces": ["team-b"],
            }
        }
    )
    assert spec is not None, found
    srcs = sources({"monitoring": spec})
    try:
        answers = await ask(srcs, MetricSource(ref="monitoring"), TEAM_A, TEAM_B)
        assert answers[TEAM_B] == Scalar(7.0)
        refused = answers[TEAM_A]
        assert isinstance(refused, MeasurementError) and "not granted to namespace team-a" in refused.message
        missing = await ask(srcs, MetricSource(ref="nosuch"), TEAM_B)
        assert isinstance(missing[TEAM_B], MeasurementError)
        # the admins' token (a Secret that never opted in: the admins chose it) went out once, for team-b
        assert listener.credentials() == ["Bearer admin-token"]
    finally:
        srcs.close()


async def test_credentials_never_follow_a_redirect(listener: Listener) -> None:
    srcs = sources()
    try:
        moved = MetricSource(
            prometheus=PrometheusSource.model_validate(
                {
                    "address": f"{listener.url}/moved",
                    "bearerToken": {"secretKeyRef": {"name": "prom-token", "key": "token"}},
                }
            )
        )
        (answer,) = (await ask(srcs, moved, TEAM_A)).values()
        assert isinstance(answer, MeasurementError) and "307" in answer.message
        assert [h["path"] for h in listener.seen] == ["/moved/api/v1/query"]
    finally:
        srcs.close()


async def test_an_answer_past_the_cap_is_refused_while_reading(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 1024 * 1024)
    listener.body = (
        b'{"status":"success","data":{"resultType":"vector","result":[' + b" " * (10 * 2**20) + b"]}}"
    )
    srcs = sources()
    try:
        started = time.monotonic()
        own = MetricSource(prometheus=PrometheusSource(address=listener.url))
        (answer,) = (await ask(srcs, own, TEAM_A)).values()
        assert isinstance(answer, MeasurementError) and "larger than 1 MiB" in answer.message
        assert time.monotonic() - started < 5
    finally:
        srcs.close()


async def test_a_slow_tenant_prometheus_does_not_starve_the_others(listener: Listener) -> None:
    """Team A's Prometheus hangs; its queries hold at most their own share of the query threads, so the
    admins' source keeps answering for team B at once."""
    async with serving(_hanging_app(), shutdown_timeout=0.1) as slow_url:
        spec, _ = parse_cluster_source({"spec": {"prometheus": {"address": listener.url}}})
        assert spec is not None
        srcs = sources({"shared": spec})
        try:
            # ten addresses of team A's own (one policy each: more than the threads there are), two queries on each
            slow = [
                MetricSource(
                    prometheus=PrometheusSource.model_validate(
                        {"address": f"{slow_url}/{i}", "timeout": "2s"}
                    )
                )
                for i in range(10)
            ]
            stuck = [
                asyncio.create_task(ask(srcs, slow[i % 10], RevisionKey("team-a", f"r{i}")))
                for i in range(20)
            ]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            answers = await ask(srcs, MetricSource(ref="shared"), TEAM_B)
            assert answers == {TEAM_B: Scalar(7.0)}
            assert time.monotonic() - started < 1.0
            results = await asyncio.gather(*stuck)
            assert all(isinstance(v, MeasurementError) for r in results for v in r.values())
        finally:
            srcs.close()


def _hanging_app() -> web.Application:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="{}")

    app = web.Application()
    app.router.add_get("/{prefix}/api/v1/query", hang)
    return app
