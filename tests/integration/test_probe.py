"""A canary probe (strategy.canary.probe) through the controller against the sandbox, judged on real metrics
(a real Prometheus scraping the sandbox's traffic): a good candidate walks the probe's small share and then
the ladder; a bad one is rolled back while it has the probe's share only, and no user of the first step's
larger share ever meets it."""

from __future__ import annotations

from typing import Any

from rollout.api.rollout import Phase, Verdict
from tests.integration.harness import (
    NEEDS_PROMETHEUS,
    allowed_splits,
    assert_within_plan,
    controller,
    eventually,
    finished,
    onboard,
    sandbox,
)

pytestmark = NEEDS_PROMETHEUS

PROBE = 10  # percent: 6 requests/s of the sandbox's 60, a few failures a window for the bad candidate
POLICY: dict[str, Any] = {
    "strategy": {
        "canary": {
            # five windows: a new revision's first window misses its first failures (a series born inside a
            # window is read with increase(), which cannot count its first sample)
            "probe": {"weight": PROBE, "bake": "10s"},
            "steps": [{"weight": 25, "bake": "4s"}, {"weight": 50, "bake": "4s"}],
        }
    },
    "analysis": {
        "interval": "2s",
        "minRequests": 5,
        "failureLimit": {"consecutive": 2, "total": 3},
        "metrics": [
            {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}, "compare": {}}
        ],
    },
}


async def test_a_probe_shows_a_bad_candidate_to_a_few_users_only() -> None:
    async with sandbox(prometheus=True, scrape_interval=1.0, rps=60.0) as cluster:
        cluster.apply_policy("canary", POLICY)
        async with controller(cluster):
            for name in ("probed-good", "probed-bad"):
                await onboard(cluster, name)
            cluster.new_revision("probed-good", "ghcr.io/acme/good:v2")
            cluster.new_revision("probed-bad", "ghcr.io/acme/bad:v2", {"error-rate": "0.4"})
            good = await eventually(lambda: finished(cluster, "probed-good-00002.1"), within=90)
            bad = await eventually(lambda: finished(cluster, "probed-bad-00002.1"), within=90)

            assert good.status.phase == Phase.SUCCEEDED, good.status.message
            plan = allowed_splits("probed-good-00001", "probed-good-00002", [PROBE, 25, 50])
            seen = assert_within_plan(cluster, "probed-good", plan)
            shares = [s.get("probed-good-00002", 0) for s in seen]
            assert [s for i, s in enumerate(shares) if s and (i == 0 or shares[i - 1] != s)] == [
                PROBE,
                25,
                50,
                100,
            ], seen

            assert bad.status.phase == Phase.ROLLED_BACK and bad.status.reason == "RegressionDetected"
            failed = next(m for m in bad.status.analysis if m.name == "error-rate")
            assert failed.verdict == Verdict.FAIL and (failed.canary_requests or 0) > 0, failed
            # never more than the probe's share: the first step's 25% was not given
            assert_within_plan(
                cluster, "probed-bad", allowed_splits("probed-bad-00001", "probed-bad-00002", [PROBE])
            )
