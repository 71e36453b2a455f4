"""/metrics, /healthz and /readyz of a running controller."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import controller, eventually, onboard, phase_of, sandbox

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 25}, {"pause": {}}], "interval": "1s"}},
    "analysis": {"interval": "1s", "metrics": []},
}


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def status(url: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}{path}") as resp:
        return resp.status, await resp.text()


async def test_metrics_health_and_readiness() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", POLICY)
        async with controller(cluster, metrics_port=0) as ctl:
            assert ctl.health is not None
            url = ctl.health.url
            assert await status(url, "/healthz") == (200, "ok")
            assert await status(url, "/readyz") == (200, "ok")
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Paused", within=15)

            labels = (("namespace", "default"), ("rollout", "hello-00002.1"), ("target", "hello"))

            async def paused_gauges() -> bool:
                m = await scrape(url)
                return (
                    m.get(("knrollout_rollouts", (("phase", "Paused"),))) == 1
                    and m.get(("knrollout_rollout_canary_weight", labels)) == 25
                )

            for _ in range(50):
                if await paused_gauges():
                    break
            assert await paused_gauges()
            m = await scrape(url)
            decision = (("namespace", "default"), ("outcome", "CandidateReady"), ("target", "hello"))
            assert m[("knrollout_decisions_total", decision)] == 1
            # when the running rollout must be over (started + the policy's default deadlines.rollout, 2h)
            r = cluster.rollout("hello-00002.1")
            assert r is not None and r.status.started_at is not None
            deadline = m[("knrollout_rollout_deadline_timestamp_seconds", labels)]
            assert deadline == r.status.started_at.timestamp() + 7200
            patches = [
                v
                for (name, labels), v in m.items()
                if name == "knrollout_kube_request_duration_seconds_count" and ("verb", "patch") in labels
            ]
            assert sum(patches) >= 2  # at least the pin and the first step
            assert m[("knrollout_traffic_writes_total", (("outcome", "written"),))] >= 2
            assert m[("knrollout_leader", ())] == 1
