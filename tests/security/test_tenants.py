"""A live controller against the sandbox, with policies written by a hostile or careless team: what the admins
did not grant is refused with a Valid=False condition naming the field and the fix, a Secret that did not opt
in never leaves the cluster, and one namespace's hanging webhooks leave the other namespaces' step times
as they were (measured)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from rollout.api.rollout import Phase, Rollout
from rollout.controller.egress import Destinations
from rollout.controller.rollouts import ControllerDefaults
from rollout.controller.webhooks import WebhookSettings
from rollout_lab.sandbox.apiserver import kinds
from tests.integration.harness import (
    POLICIES,
    ROLLOUTS,
    Cluster,
    controller,
    eventually,
    sandbox,
    template,
)
from tests.local_http import serving
from tests.security.net import Attempts, StubResolver

FAST = {"strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "1s"}}}
NO_METRICS = {**FAST, "analysis": {"interval": "1s", "metrics": []}}


@contextlib.asynccontextmanager
async def tenants(*namespaces: str) -> AsyncIterator[Cluster]:
    """The sandbox with a namespace per team."""
    async with sandbox() as cluster:
        for ns in namespaces:
            cluster.store.create(
                kinds.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        yield cluster


def apply_policy(cluster: Cluster, ns: str, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }
    cluster.store.create(POLICIES, body)


def create_service(cluster: Cluster, ns: str, name: str, policy: str) -> None:
    body = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"knrollout.dev/policy": policy}},
        "spec": {"template": template("ghcr.io/acme/app:v1")},
    }
    cluster.store.create(kinds.KSERVICES, body)


def new_revision(cluster: Cluster, ns: str, name: str, image: str) -> None:
    for _ in range(10):
        svc = copy.deepcopy(dict(cluster.store.get(kinds.KSERVICES, ns, name)))
        svc.pop("status", None)
        svc["spec"]["template"] = template(image)
        try:
            cluster.store.update(kinds.KSERVICES, svc)
            return
        except Exception as exc:
            if getattr(exc, "code", None) != 409:
                raise
    raise AssertionError("could not update the Service")


def pinned(cluster: Cluster, ns: str, name: str) -> bool:
    traffic = (cluster.store.get(kinds.KSERVICES, ns, name) or {}).get("spec", {}).get("traffic") or []
    return any(e.get("tag") == "stable" and e.get("percent") == 100 for e in traffic)


def rollout_of(cluster: Cluster, ns: str, name: str) -> Rollout | None:
    return cluster.rollout(name, ns)


def valid_condition(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    policy = cluster.store.get(POLICIES, ns, name) or {}
    for cond in (policy.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Valid":
            return dict(cond)
    return None


@pytest.mark.slow
async def test_what_the_admins_did_not_grant_is_refused_with_the_field_and_the_fix() -> None:
    """Refused by the API server (the CRD's rules) where a schema can say it, else by the controller's Valid
    condition; either way the message names the field and the fix, and no traffic moves."""
    token_file = {"address": "http://127.0.0.1:9/", "bearerToken": {"file": "/var/run/secrets/token"}}
    async with tenants("team-a") as cluster:
        for prometheus, field, fix in (
            (token_file, "bearerToken", "ClusterMetricSource"),
            ({"timeout": "8784h"}, "spec.metricSource.prometheus.timeout", "at most 1m"),
        ):
            with pytest.raises(Exception) as refused:
                apply_policy(
                    cluster, "team-a", "bad", {**NO_METRICS, "metricSource": {"prometheus": prometheus}}
                )
            assert field in str(refused.value) and fix in str(refused.value), str(refused.value)
        own = {"prometheus": {"address": "http://127.0.0.1:9/"}}
        apply_policy(cluster, "team-a", "own-address", {**NO_METRICS, "metricSource": own})
        create_service(cluster, "team-a", "web", "own-address")
        async with controller(cluster):
            cond = await eventually(lambda: valid_condition(cluster, "team-a", "own-address"), within=10)
            assert cond["status"] == "False", cond
            assert "spec.metricSource.prometheus.address" in cond["message"], cond["message"]
            assert (
                "metricSource.ref" in cond["message"] and "--allow-policy-metric-address" in cond["message"]
            )
            await asyncio.sleep(1.0)
            assert not pinned(cluster, "team-a", "web")  # nothing moved: no pin, no Rollout
            assert cluster.store.list(ROLLOUTS, "team-a")[0] == []


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    async with serving(app, shutdown_timeout=0.2) as url:
        yield url, seen


@pytest.mark.slow
async def test_a_secret_that_did_not_opt_in_never_reaches_the_policys_address(
    listener: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = listener
    async with tenants("team-a") as cluster:
        password = base64.b64encode(b"hunter2").decode()
        cluster.store.create(
            kinds.SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db", "namespace": "team-a"},
                "data": {"password": password},
            },
        )
        source = {
            "prometheus": {"address": url, "bearerToken": {"secretKeyRef": {"name": "db", "key": "password"}}}
        }
        metrics = [{"name": "errors", "builtin": "errorRate", "threshold": {"max": 0.5}}]
        apply_policy(
            cluster,
            "team-a",
            "steal",
            {**FAST, "analysis": {"interval": "1s", "metrics": metrics}, "metricSource": source},
        )
        create_service(cluster, "team-a", "web", "steal")
        defaults = ControllerDefaults(prometheus_url="http://127.0.0.1:9", allow_policy_metric_address=True)
        async with controller(cluster, defaults=defaults):
            await eventually(lambda: pinned(cluster, "team-a", "web"), within=15)
            new_revision(cluster, "team-a", "web", "ghcr.io/acme/app:v2")

            def refused() -> str:
                r = rollout_of(cluster, "team-a", "web-00002.1")
                return " ".join(a.message for a in r.status.analysis) if r is not None else ""

            message = await eventually(lambda: "has not opted in" in refused() and refused(), within=15)
            assert "kubectl label secret db -n team-a knrollout.dev/metric-credentials=true" in message
        assert seen == []  # not one request reached the address the policy named
        assert all("hunter2" not in str(h) for h in seen)


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, list[str]]]:
    hanging: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        hanging.append((await request.json())["namespace"])
        await asyncio.sleep(3600)
        return web.Response(text="never")

    app = web.Application()
    app.router.add_post("/hang", hang)
    async with serving(app, shutdown_timeout=0.2) as url:
        yield url, hanging


async def _time_to_promotion(cluster: Cluster, ns: str, name: str, image: str) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    new_revision(cluster, ns, name, image)
    candidate = f"{name}-00002.1"
    done = await eventually(
        lambda: (r := rollout_of(cluster, ns, candidate)) is not None and r.status.phase.terminal and r,
        within=30,
    )
    assert done.status.phase == Phase.SUCCEEDED, done.status
    return loop.time() - started


@pytest.mark.slow
async def test_one_namespaces_hanging_hooks_leave_the_others_step_times_alone(
    hooks: tuple[str, list[str]],
) -> None:
    url, hanging = hooks
    hooked = {
        **NO_METRICS,
        "webhooks": [
            {"name": "load-test", "type": "step", "url": f"{url}/hang", "timeout": "30s", "retries": 5}
        ],
    }
    async with tenants("team-a", "team-b") as cluster:
        apply_policy(cluster, "team-a", "hooked", hooked)
        apply_policy(cluster, "team-b", "plain", NO_METRICS)
        for i in range(4):
            create_service(cluster, "team-a", f"a{i}", "hooked")
        for name in ("before", "during"):
            create_service(cluster, "team-b", name, "plain")
        settings = WebhookSettings(Destinations.parse(["127.0.0.0/8"]), call_deadline=60.0, per_namespace=4)
        # two workers: a reconcile that waited on a hook would stop team-b at once
        async with controller(cluster, workers=2, webhooks=settings):
            targets = [*(("team-a", f"a{i}") for i in range(4)), ("team-b", "before"), ("team-b", "during")]
            await eventually(lambda: all(pinned(cluster, ns, name) for ns, name in targets), within=15)
            baseline = await _time_to_promotion(cluster, "team-b", "before", "ghcr.io/acme/app:v2")
            for i in range(4):
                new_revision(cluster, "team-a", f"a{i}", "ghcr.io/acme/app:v2")
            await eventually(lambda: len(hanging) == 4, within=15)  # every team-a hook is hanging now
            during = await _time_to_promotion(cluster, "team-b", "during", "ghcr.io/acme/app:v2")
            print(
                f"team-b time to promotion: {baseline:.2f}s before, {during:.2f}s while team-a's hooks hang"
            )
            assert during < baseline + 2.0, (baseline, during)
            stuck = rollout_of(cluster, "team-a", "a0-00002.1")
            assert stuck is not None and stuck.status.phase == Phase.PROGRESSING
            assert stuck.status.pending_webhooks == ["step-0/load-test"]
            assert "waiting for webhook step-0/load-test" in stuck.status.message


@pytest.mark.slow
async def test_webhooks_reach_only_granted_destinations_through_a_live_controller() -> None:
    """A hook to the metadata address is refused where the policy is read (Valid=False); a hook whose granted
    name resolves to it is refused at the call (Event), before any socket is made."""
    attempts = Attempts()
    resolver = StubResolver({"meta.hooks.test": "169.254.169.254"})
    settings = WebhookSettings(Destinations.parse(["*.hooks.test"]))
    async with tenants("team-a") as cluster:
        literal = [{"name": "imds", "type": "preRollout", "url": "http://169.254.169.254/latest/meta-data/"}]
        apply_policy(cluster, "team-a", "literal", {**NO_METRICS, "webhooks": literal})
        named = [{"name": "smoke", "type": "preRollout", "url": "http://meta.hooks.test/smoke", "retries": 0}]
        apply_policy(cluster, "team-a", "named", {**NO_METRICS, "webhooks": named})
        create_service(cluster, "team-a", "web", "named")
        async with controller(
            cluster, webhooks=settings, webhook_resolver=resolver, webhook_socket_factory=attempts
        ):
            cond = await eventually(lambda: valid_condition(cluster, "team-a", "literal"), within=10)
            assert cond["status"] == "False" and "spec.webhooks[0].url" in cond["message"], cond
            assert "link-local or cloud metadata" in cond["message"]
            await eventually(lambda: pinned(cluster, "team-a", "web"), within=15)
            new_revision(cluster, "team-a", "web", "ghcr.io/acme/app:v2")
            done = await eventually(
                lambda: (
                    (r := rollout_of(cluster, "team-a", "web-00002.1")) is not None
                    and r.status.phase.terminal
                    and r
                ),
                within=20,
            )
            assert done.status.phase == Phase.FAILED, done.status

            def refusals() -> list[str]:
                events, _ = cluster.store.list(kinds.EVENTS, "team-a")
                return [e["message"] for e in events if e["reason"] == "WebhookFailed"]

            (message, *_) = await eventually(refusals, within=5)
            assert "resolves to 169.254.169.254" in message, message
        assert attempts.asked == [] and resolver.asked  # resolved through the stub, and no socket made
