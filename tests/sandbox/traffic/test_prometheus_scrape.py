"""A real Prometheus (Debian's binary, on 127.0.0.1) scrapes the traffic generator; per-revision error
rates and latency quantiles, queried in each dialect, match the behaviour set on the revisions."""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import time
from typing import Any

import pytest

from rollout.knative import dialects
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.apiserver.store import MemoryStore
from rollout_lab.sandbox.clock import WallClock
from rollout_lab.sandbox.knative.controller import KnativeSimulator
from rollout_lab.sandbox.knative.fleet import Fleet
from rollout_lab.sandbox.prometheus import LocalPrometheus, local_prometheus
from rollout_lab.sandbox.traffic.generator import GeneratorSettings, TrafficGenerator
from rollout_lab.sandbox.traffic.server import MetricsServer
from tests.sandbox.knative.harness import service_manifest, template
from tests.sandbox.traffic.expected import histogram_quantile, lognormal_cdf

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(90)]

P = "sandbox.knrollout.dev/"
STABLE = {"error-rate": 0.01, "median": 0.040, "sigma": 0.3}
CANARY = {"error-rate": 0.08, "median": 0.120, "sigma": 0.3}
RPS = 400.0
RUN_SECONDS = 9.0


def behaviour(b: dict[str, float]) -> dict[str, str]:
    return {
        P + "error-rate": str(b["error-rate"]),
        P + "latency-median": f"{b['median'] * 1000:g}ms",
        P + "latency-sigma": str(b["sigma"]),
    }


async def wait_for(predicate: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"][label]: float(r["value"][1]) for r in result}


async def error_rates(prom: LocalPrometheus, metric: str, label: str, errors: str) -> dict[str, float]:
    bad = by(await prom.query(f"sum by ({label}) ({metric}{{{errors}}})"), label)
    total = by(await prom.query(f"sum by ({label}) ({metric})"), label)
    return {name: bad.get(name, 0.0) / total[name] for name in total}


async def quantiles(prom: LocalPrometheus, bucket_metric: str, label: str, q: float) -> dict[str, float]:
    return by(await prom.query(f"histogram_quantile({q}, sum by (le, {label}) ({bucket_metric}))"), label)


def close_rate(measured: float, expected: float, n: float) -> bool:
    return abs(measured - expected) <= 5 * math.sqrt(expected * (1 - expected) / n) + 0.002


@pytest.fixture
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("Debian's prometheus is not installed (./scripts/ensure-prometheus installs it)")
    return path


async def test_prometheus_sees_per_revision_behaviour(prometheus_binary: str) -> None:
    clock = WallClock()
    store = MemoryStore()
    fleet = Fleet(seed=7, default_ready_delay=0.3, default_cold_start=0.3)
    sim = KnativeSimulator(store, clock, fleet=fleet, autoscale_tick=1.0)
    sim.install()
    generator = TrafficGenerator(
        store,
        fleet,
        clock,
        GeneratorSettings(default_rps=RPS, dialects=dialects.DIALECTS, seed=11, tick=0.1),
    )
    server = MetricsServer(generator.render_metrics)
    await server.start()
    tasks = [asyncio.ensure_future(sim.run()), asyncio.ensure_future(generator.run())]
    try:
        async with local_prometheus([f"127.0.0.1:{server.port}"], scrape_interval=1.0) as prom:
            store.create(kinds.KSERVICES, service_manifest(annotations=behaviour(STABLE)))
            await wait_for(lambda: _traffic(store) == {"hello-00001"}, 10, "hello-00001 serving")
            service = store.get(kinds.KSERVICES, "default", "hello")
            assert service is not None
            service["spec"]["template"] = template("ghcr.io/acme/hello:v2", annotations=behaviour(CANARY))
            service["spec"]["traffic"] = [
                {"revisionName": "hello-00001", "percent": 50, "tag": "stable"},
                {"latestRevision": True, "percent": 50, "tag": "canary"},
            ]
            store.update(kinds.KSERVICES, service)
            await wait_for(lambda: _traffic(store) == {"hello-00001", "hello-00002"}, 10, "the 50/50 split")
            await asyncio.sleep(RUN_SECONDS)
            await asyncio.sleep(1.5)  # one more scrape

            # knative-classic: queue-proxy counts and millisecond histograms per revision
            counts = by(await prom.query("sum by (revision_name) (revision_request_count)"), "revision_name")
            assert counts["hello-00002"] > 1000 and counts["hello-00001"] > 1000
            rates = await error_rates(
                prom, "revision_request_count", "revision_name", 'response_code_class="5xx"'
            )
            assert close_rate(rates["hello-00001"], STABLE["error-rate"], counts["hello-00001"]), rates
            assert close_rate(rates["hello-00002"], CANARY["error-rate"], counts["hello-00002"]), rates
            bounds_ms = dialects.CLASSIC_LATENCY_BUCKETS_MS
            for q in (0.5, 0.9):
                measured = await quantiles(prom, "revision_request_latencies_bucket", "revision_name", q)
                for name, b in (("hello-00001", STABLE), ("hello-00002", CANARY)):
                    expected = histogram_quantile(q, bounds_ms, lognormal_cdf(b["median"] * 1000, b["sigma"]))
                    assert abs(measured[name] - expected) / expected < 0.08, (q, name, measured, expected)
                    print(
                        f"classic p{q * 100:g} {name}: measured {measured[name]:.1f} ms, expected {expected:.1f} ms"
                    )
            rate = by(
                await prom.query("sum by (revision_name) (rate(revision_request_count[5s]))"), "revision_name"
            )
            assert abs(sum(rate.values()) - RPS) / RPS < 0.25, rate

            print(f"\nclassic: requests {counts}, error rates {rates}, rate {rate}")

            # knative-otel: seconds, http_response_status_code, the revision label our scrape config adds
            otel_count = f"{dialects.OTEL_INVOCATION_DURATION}_count"
            label = dialects.OTEL_REVISION_LABEL
            otel_rates = await error_rates(prom, otel_count, label, 'http_response_status_code=~"5.."')
            assert close_rate(otel_rates["hello-00002"], CANARY["error-rate"], counts["hello-00002"]), (
                otel_rates
            )
            assert close_rate(otel_rates["hello-00001"], STABLE["error-rate"], counts["hello-00001"]), (
                otel_rates
            )
            bounds_s = dialects.OTEL_DURATION_BUCKETS_S
            measured = await quantiles(prom, f"{dialects.OTEL_INVOCATION_DURATION}_bucket", label, 0.5)
            for name, b in (("hello-00001", STABLE), ("hello-00002", CANARY)):
                expected = histogram_quantile(0.5, bounds_s, lognormal_cdf(b["median"], b["sigma"]))
                assert abs(measured[name] - expected) / expected < 0.08, (name, measured, expected)

            print(f"otel: error rates {otel_rates}, p50 {measured}")

            # kourier: per-cluster (namespace/revision) counts at the gateway
            envoy = await error_rates(
                prom, "envoy_cluster_upstream_rq", "envoy_cluster_name", 'envoy_response_code=~"5.."'
            )
            assert close_rate(envoy["default/hello-00002"], CANARY["error-rate"], counts["hello-00002"]), (
                envoy
            )
            print(f"kourier: error rates {envoy}")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.stop()


def _traffic(store: MemoryStore) -> set[str]:
    route = store.get(kinds.ROUTES, "default", "hello")
    return {t["revisionName"] for t in ((route or {}).get("status") or {}).get("traffic") or []}
