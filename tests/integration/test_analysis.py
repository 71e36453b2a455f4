"""Rollouts judged on real metrics: the sandbox's traffic generator is scraped by a real Prometheus (Debian's
binary on 127.0.0.1, 1s scrapes), the controller queries it and the engine's judges decide."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from rollout.api.rollout import Phase, Verdict
from rollout_lab.sandbox.prometheus import LocalPrometheus, find_prometheus
from tests.integration.harness import (
    NEEDS_PROMETHEUS,
    Cluster,
    allowed_splits,
    assert_within_plan,
    controller,
    events_for,
    eventually,
    finished,
    onboard,
    phase_of,
    sandbox,
)

pytestmark = NEEDS_PROMETHEUS

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 20, "bake": "4s"}, {"weight": 50, "bake": "4s"}]}},
    "analysis": {
        "interval": "2s",
        "minRequests": 10,
        "failureLimit": {"consecutive": 2, "total": 3},
        "metrics": [
            {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}},
            {"name": "latency-p99", "builtin": "latency", "quantile": 0.99, "threshold": {"max": 0.4}},
        ],
    },
}


def metric(cluster: Cluster, rollout: str, name: str) -> Any:
    """The rollout's last result for one metric (None before the first analysis)."""
    r = cluster.rollout(rollout)
    return next((m for m in r.status.analysis if m.name == name), None) if r is not None else None


def verdict(cluster: Cluster, rollout: str, name: str) -> Verdict | None:
    m = metric(cluster, rollout, name)
    return m.verdict if m is not None else None


async def test_good_canary_promoted_and_regressions_rolled_back_with_the_evidence() -> None:
    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        cluster.apply_policy("canary", POLICY)
        async with controller(cluster) as ctl:
            for name in ("good", "errors", "slow"):
                await onboard(cluster, name)
            cluster.new_revision("good", "ghcr.io/acme/good:v2")
            cluster.new_revision("errors", "ghcr.io/acme/errors:v2", {"error-rate": "0.4"})
            cluster.new_revision(
                "slow", "ghcr.io/acme/slow:v2", {"latency-median": "700ms", "latency-sigma": "0.2"}
            )
            good, errors, slow = [
                await eventually(lambda n=n: finished(cluster, f"{n}-00002.1"), within=60)  # type: ignore[misc]
                for n in ("good", "errors", "slow")
            ]

            assert good.status.phase == Phase.SUCCEEDED, good.status.message
            for m in good.status.analysis:
                assert m.verdict == Verdict.PASS and (m.canary_requests or 0) >= 10, m
            assert_within_plan(cluster, "good", allowed_splits("good-00001", "good-00002", [20, 50]))

            assert errors.status.phase == Phase.ROLLED_BACK and errors.status.reason == "RegressionDetected"
            err = metric(cluster, "errors-00002.1", "error-rate")
            assert err.verdict == Verdict.FAIL and err.value is not None and err.value > 0.05
            assert err.stable_value is not None and err.stable_value < 0.05
            (event,) = await events_for(cluster, "errors-00002.1", "RegressionDetected")
            assert (
                event["type"] == "Warning"
                and "error-rate Fail (canary" in event["message"]
                and "max 5.00%" in event["message"]
            )
            assert await events_for(cluster, "errors", "RegressionDetected")  # also on the Service
            parked = await eventually(
                lambda: [e for e in cluster.spec_traffic("errors") if e.get("tag") == "canary"]
            )
            assert parked[0]["percent"] == 0 and parked[0]["revisionName"] == "errors-00002"
            assert_within_plan(cluster, "errors", allowed_splits("errors-00001", "errors-00002", [20, 50]))

            assert slow.status.phase == Phase.ROLLED_BACK and slow.status.reason == "RegressionDetected"
            lat = metric(cluster, "slow-00002.1", "latency-p99")
            assert lat.verdict == Verdict.FAIL and lat.value is not None and lat.value > 0.4
            assert "latency-p99" in slow.status.message

            # the three rollouts were analysed together: one query per builtin metric per tick
            shared = [r for r in ctl.analysis.reports if r.rollouts >= 2]
            assert shared and all(r.queries == 2 for r in shared)


async def stop(prom: LocalPrometheus) -> None:
    prom.process.terminate()
    await prom.process.wait()


@contextlib.asynccontextmanager
async def restarted(prom: LocalPrometheus) -> AsyncIterator[None]:
    """The same Prometheus again: same port, configuration and storage."""
    listen = prom.url.removeprefix("http://")
    process = await asyncio.create_subprocess_exec(
        find_prometheus(),
        f"--config.file={prom.data_dir / 'prometheus.yml'}",
        f"--storage.tsdb.path={prom.data_dir / 'data'}",
        f"--web.listen-address={listen}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    prom.process = process
    try:
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def test_no_promotion_while_prometheus_is_down_then_the_rollout_resumes() -> None:
    policy = {**POLICY, "strategy": {"canary": {"steps": [{"weight": 20, "bake": "3s"}]}}}
    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        prom = cluster.env.prometheus
        assert prom is not None
        cluster.apply_policy("canary", policy)
        async with controller(cluster):
            await onboard(cluster, "hello")
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            await eventually(lambda: phase_of(cluster, "hello-00002.1") == "Progressing", within=15)
            await stop(prom)
            await asyncio.sleep(6)  # two bake times: the step would have ended had the source answered
            r = cluster.rollout("hello-00002.1")
            assert r is not None and r.status.phase == Phase.PROGRESSING and r.status.current_step == 0
            # held whether or not a failed window has been judged yet (the retries of a down source take
            # seconds), and from the first failed window on, not from the consecutive-error limit
            held = ("the metric source failed on the last window", "no data at this step yet")
            assert any(reason in r.status.message for reason in held), r.status.message
            async with restarted(prom):
                done = await eventually(lambda: finished(cluster, "hello-00002.1"), within=40)
                assert done.status.phase == Phase.SUCCEEDED, done.status.message
            assert_within_plan(cluster, "hello", allowed_splits("hello-00001", "hello-00002", [20]))


def _has_data(cluster: Cluster, name: str, since: datetime, windows: int) -> bool:
    """Every metric has had data in this step, the latest at least `windows` windows of 2s in."""
    r = cluster.rollout(name)
    if r is None or {m.name for m in r.status.analysis} != {"error-rate", "latency-p99"}:
        return False
    data = [m.last_data_at for m in r.status.analysis]
    return all(d is not None and (d - since).total_seconds() > 2.0 * (windows - 1) for d in data)


@pytest.mark.slow
async def test_an_outage_in_the_last_seconds_of_a_step_never_lets_it_promote() -> None:
    """Prometheus cut in a step once its windows had passing data (the case that used to promote on stale
    evidence when the bake ended), after one window and after more: the step holds until a window is
    measured again, then the rollout promotes."""
    interval, bake = 2.0, 10.0
    policy = {
        **POLICY,
        "analysis": {**POLICY["analysis"], "interval": "2s"},
        "strategy": {"canary": {"steps": [{"weight": 50, "bake": "10s"}]}},
    }
    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        prom = cluster.env.prometheus
        assert prom is not None
        cluster.apply_policy("canary", policy)
        async with controller(cluster), contextlib.AsyncExitStack() as restarts:
            await onboard(cluster, "hello")
            for version, windows in ((2, 1), (3, 2)):
                name = f"hello-0000{version}.1"
                cluster.new_revision("hello", f"ghcr.io/acme/hello:v{version}")

                def step_started(name: str = name) -> datetime | None:
                    r = cluster.rollout(name)
                    return r.status.step_started_at if r is not None and r.status.traffic_applied else None

                started = await eventually(step_started, within=20)
                await eventually(partial(_has_data, cluster, name, started, windows), within=8)
                left = (started + timedelta(seconds=bake) - datetime.now(UTC)).total_seconds()
                assert left > interval, (
                    f"the step's data came too late to cut before its last window ({left}s)"
                )
                await stop(prom)
                await asyncio.sleep(left + 2 * interval)  # past the bake's end and two more windows
                r = cluster.rollout(name)
                assert r is not None and r.status.phase == Phase.PROGRESSING, (windows, r and r.status)
                assert "metric source" in r.status.message, r.status.message
                await restarts.enter_async_context(restarted(prom))  # running on into the next round
                done = await eventually(partial(finished, cluster, name), within=40)
                assert done.status.phase == Phase.SUCCEEDED, done.status.message


async def test_no_traffic_with_no_data_wait_never_promotes_until_windows_have_data() -> None:
    """A quiet Service (no requests) under noData: wait: the step's bake passes and windows keep coming
    without data, and the rollout holds at its step; once requests arrive, fresh windows pass and it
    promotes."""
    policy = {
        **POLICY,
        "analysis": {**POLICY["analysis"], "noData": "wait"},
        "strategy": {"canary": {"steps": [{"weight": 50, "bake": "4s"}]}},
    }
    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        cluster.apply_policy("canary", policy)
        async with controller(cluster):
            await onboard(cluster, "quiet", rps=0)
            cluster.new_revision("quiet", "ghcr.io/acme/quiet:v2")
            name = "quiet-00002.1"

            def served_since() -> datetime | None:
                r = cluster.rollout(name)
                return r.status.step_started_at if r is not None and r.status.traffic_applied else None

            started = await eventually(served_since, within=20)
            await asyncio.sleep(max(0.0, (started - datetime.now(UTC)).total_seconds()) + 4.0 + 3 * 2.0)
            r = cluster.rollout(name)
            assert r is not None and r.status.phase == Phase.PROGRESSING, r and r.status
            assert "no data" in r.status.message, r.status.message
            assert all(m.verdict == Verdict.NO_DATA for m in r.status.analysis), r.status.analysis

            def louder(svc: dict[str, Any]) -> None:
                svc["metadata"]["annotations"]["sandbox.knrollout.dev/rps"] = "60"

            cluster.update_service("quiet", louder)
            done = await eventually(partial(finished, cluster, name), within=40)
            assert done.status.phase == Phase.SUCCEEDED, done.status.message
            assert done.status.without_data == [] and "without data" not in done.status.outcome
