"""What `rollout demo` prints: metrics in the units `rollout status` uses, and whole outcome sentences."""

from __future__ import annotations

from rollout.api.rollout import MetricResult, Phase, Verdict
from rollout_lab.demo.display import Outcome, metric_text, summary
from tests.engine.world import make_rollout

POLICY = {
    "strategy": {"canary": {"steps": [{"weight": 10, "bake": "1m"}]}},
    "analysis": {
        "metrics": [
            {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}},
            {"name": "latency", "builtin": "latency", "compare": {}},
        ]
    },
}


def test_metrics_read_in_percent_and_milliseconds() -> None:
    policy = make_rollout(POLICY).spec.policy.spec
    errors = MetricResult(
        name="error-rate", verdict=Verdict.FAIL, value=0.138, stable_value=0.004, threshold_max=0.05
    )
    latency = MetricResult(name="latency", verdict=Verdict.PASS, value=0.08, stable_value=0.0795)
    assert metric_text(errors, policy) == "error-rate 13.80% vs stable 0.40% (max 5.00%) Fail"
    assert metric_text(latency, policy) == "latency 80ms vs stable 80ms Pass"


def test_the_summary_keeps_the_whole_outcome() -> None:
    r = make_rollout(POLICY)
    outcome = "rolled back: " + "; ".join(
        f"metric-{n} 13.8% against stable 0.4% with a long explanation" for n in range(6)
    )
    r = r.model_copy(
        update={"status": r.status.model_copy(update={"phase": Phase.ROLLED_BACK, "outcome": outcome})}
    )
    text = summary([Outcome("bad revision", r, 42.0)], "Prometheus")
    assert " ".join(text.split()).count("with a long explanation") == 6
    assert max(len(line) for line in text.splitlines() if "metric-" in line) <= 110
