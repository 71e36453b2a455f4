"""Blue/green and A/B rollouts through the controller, judged on real metrics: the sandbox's generator sends a
share of each Service's requests with the `Knative-Serving-Tag` header (as smoke tests or a beta cohort would),
a real Prometheus scrapes it, and the controller decides. Checks what each strategy promises about live
traffic: blue/green never splits it, A/B by header leaves it all on stable until promotion, A/B by split holds
the configured percent."""

from __future__ import annotations

from typing import Any

from rollout.api.rollout import Phase, Verdict
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
    sandbox,
)

pytestmark = NEEDS_PROMETHEUS

ANALYSIS: dict[str, Any] = {
    "interval": "2s",
    "minRequests": 10,
    "failureLimit": {"consecutive": 2, "total": 3},
}
THRESHOLDS = [{"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}}]
BAD = {"error-rate": "0.4"}


def results(cluster: Cluster, rollout: str) -> dict[str, Any]:
    r = cluster.rollout(rollout)
    return {m.name: m for m in r.status.analysis} if r is not None else {}


def tagged(cluster: Cluster, service: str, tag: str) -> set[str]:
    """The revisions the sandbox served under `tag` for `service` (from status.traffic, while Ready)."""
    return {s.tags[tag] for s in cluster.served if s.service == service and tag in s.tags}


async def test_blue_green_analyses_the_preview_then_switches_at_once() -> None:
    policy = {
        "strategy": {"blueGreen": {"previewTag": "preview", "analysisDuration": "4s"}},
        "analysis": {**ANALYSIS, "metrics": THRESHOLDS},
    }
    smoke = {"tag-traffic": "preview=0.4"}  # 40% of requests ask for the preview by header
    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        cluster.apply_policy("bg", policy)
        async with controller(cluster):
            for name in ("bg-good", "bg-bad"):
                await onboard(cluster, name, policy="bg", load=smoke)
            cluster.new_revision("bg-good", "ghcr.io/acme/good:v2")
            cluster.new_revision("bg-bad", "ghcr.io/acme/bad:v2", BAD)
            good = await eventually(lambda: finished(cluster, "bg-good-00002.1"), within=60)
            bad = await eventually(lambda: finished(cluster, "bg-bad-00002.1"), within=60)

            assert good.status.phase == Phase.SUCCEEDED, good.status.message
            measured = results(cluster, "bg-good-00002.1")["error-rate"]
            assert measured.verdict == Verdict.PASS and (measured.canary_requests or 0) >= 10, measured
            assert tagged(cluster, "bg-good", "preview") == {"bg-good-00002"}
            # live traffic: all on stable, then all on the candidate; never split
            seen = assert_within_plan(
                cluster, "bg-good", allowed_splits("bg-good-00001", "bg-good-00002", [])
            )
            assert seen[-1] == {"bg-good-00002": 100}

            assert bad.status.phase == Phase.ROLLED_BACK and bad.status.reason == "RegressionDetected"
            failed = results(cluster, "bg-bad-00002.1")["error-rate"]
            assert failed.verdict == Verdict.FAIL and failed.value is not None and failed.value > 0.05
            assert tagged(cluster, "bg-bad", "preview") == {"bg-bad-00002"}
            # the bad candidate was reached only by its header: no live share ever
            assert_within_plan(cluster, "bg-bad", [{"bg-bad-00001": 100}])
            assert await events_for(cluster, "bg-bad-00002.1", "RegressionDetected")


async def decided(cluster: Cluster, name: str) -> Any:
    """The finished rollout. An experiment that ends inconclusive holds for a person (abTest's default
    onInconclusive: hold), who then promotes it: the hold is checked, and the promotion done, here."""
    held_or_done = await eventually(
        lambda: (
            (r := cluster.rollout(name)) is not None
            and (r.status.phase.terminal or r.status.reason == "InconclusiveHold")
            and r
        ),
        within=90,  # the suite runs in two workers beside the soak and the quickstart: leave room for load
    )
    if held_or_done.status.reason == "InconclusiveHold":
        assert held_or_done.status.inconclusive and "`rollout promote`" in held_or_done.status.message
        cluster.request(name, "promote", request_id="p1")
    done = await eventually(lambda: finished(cluster, name), within=60)
    if held_or_done.status.reason == "InconclusiveHold":
        assert "still inconclusive" in done.status.outcome
    return done


async def test_ab_test_compares_the_arms_by_header_and_by_split() -> None:
    compare = [
        {"name": "error-rate", "builtin": "errorRate", "compare": {"maxRelativeDegradation": 0}},
    ]

    def ab(routing: dict[str, Any]) -> dict[str, Any]:
        return {
            "strategy": {"abTest": {"duration": "4s", "promoteOnSuccess": True, **routing}},
            "analysis": {**ANALYSIS, "metrics": compare},
        }

    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        cluster.apply_policy("ab-header", ab({"routing": "header"}))
        cluster.apply_policy("ab-split", ab({"routing": "split", "splitPercent": 30}))
        async with controller(cluster):
            cohort = {"tag-traffic": "treatment=0.4"}
            for name, policy in (("h-good", "ab-header"), ("h-bad", "ab-header"), ("s-good", "ab-split")):
                await onboard(cluster, name, policy=policy, load=cohort if policy == "ab-header" else None)
            cluster.new_revision("h-good", "ghcr.io/acme/good:v2")
            cluster.new_revision("h-bad", "ghcr.io/acme/bad:v2", BAD)
            cluster.new_revision("s-good", "ghcr.io/acme/good:v2")
            done = {name: await decided(cluster, f"{name}-00002.1") for name in ("h-good", "h-bad", "s-good")}

            for name in ("h-good", "s-good"):
                assert done[name].status.phase == Phase.SUCCEEDED, done[name].status.message
                arm = results(cluster, f"{name}-00002.1")["error-rate"]
                assert (arm.canary_requests or 0) >= 10 and (arm.stable_requests or 0) >= 10, arm
                assert tagged(cluster, name, "treatment") == {f"{name}-00002"}
                assert tagged(cluster, name, "control") == {f"{name}-00001"}
            # by header: live traffic stays on stable until promotion; by split: 70/30 while it runs
            assert_within_plan(cluster, "h-good", allowed_splits("h-good-00001", "h-good-00002", []))
            split = assert_within_plan(
                cluster, "s-good", allowed_splits("s-good-00001", "s-good-00002", [30])
            )
            assert {"s-good-00001": 70, "s-good-00002": 30} in split

            bad = done["h-bad"]
            assert bad.status.phase == Phase.ROLLED_BACK and bad.status.reason == "RegressionDetected"
            arm = results(cluster, "h-bad-00002.1")["error-rate"]
            assert arm.verdict == Verdict.FAIL and arm.value is not None and arm.stable_value is not None
            assert arm.value > 0.2 > arm.stable_value and arm.ratio_lower is not None and arm.ratio_lower > 1
            assert_within_plan(cluster, "h-bad", [{"h-bad-00001": 100}])
