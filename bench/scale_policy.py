"""The RolloutPolicy bench/scale.py gives every namespace: a 10/30/60% canary ladder, judged with --analysis
on error rate and latency, either as the shipped policies judge them (`compare`: the sequential comparisons
of candidate with stable, as in policies/standard-canary.yaml) or on thresholds alone (`threshold`: error
rate under 5%, p99 under 1 s)."""

from __future__ import annotations

from typing import Any

WEIGHTS = (10, 30, 60)
JUDGES = ("compare", "threshold")

_PACE = {
    "minRequests": 1,
    "minStepRequests": 0,  # this bench measures the controller's pace, not how much evidence a step needs
}
_METRICS: dict[str, list[dict[str, Any]]] = {
    "threshold": [
        {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}},
        {"name": "latency-p99", "builtin": "latency", "quantile": 0.99, "threshold": {"max": 1.0}},
    ],
    # standard-canary's metrics; alpha far below its 0.01 so that a thousand identical candidates all
    # promote (at 0.01 about ten would be rolled back, and the bench waits for every promotion)
    "compare": [
        {
            "name": "error-rate",
            "builtin": "errorRate",
            "compare": {"earlyStopMargin": 0.5, "alpha": 1e-6},
            "threshold": {"max": 0.05},
        },
        {
            "name": "latency",
            "builtin": "latency",
            "compare": {"maxRelativeDegradation": 0, "earlyStopMargin": 0.5, "alpha": 1e-6},
        },
    ],
}


def policy(
    namespace: str, bake: float, analysis: bool, judge: str = "compare", window: float = 2.0
) -> dict[str, Any]:
    judged = {**_PACE, "interval": f"{window:g}s", "metrics": _METRICS[judge]}
    return {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": "scale", "namespace": namespace},
        "spec": {
            "strategy": {"canary": {"steps": [{"weight": w, "bake": f"{bake}s"} for w in WEIGHTS]}},
            "analysis": judged if analysis else {"interval": f"{bake}s", "metrics": []},
        },
    }
