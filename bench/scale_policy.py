"""The RolloutPolicy bench/scale.py gives every namespace: a 10/30/60% canary ladder, judged on error rate and
p99 latency with --analysis."""

from __future__ import annotations

from typing import Any

WEIGHTS = (10, 30, 60)

ANALYSIS = {
    "interval": "2s",
    "minRequests": 1,
    "minStepRequests": 0,  # this bench measures the controller's pace, not how much evidence a step needs
    "metrics": [
        {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}},
        {"name": "latency-p99", "builtin": "latency", "quantile": 0.99, "threshold": {"max": 1.0}},
    ],
}


def policy(namespace: str, bake: float, analysis: bool) -> dict[str, Any]:
    return {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": "scale", "namespace": namespace},
        "spec": {
            "strategy": {"canary": {"steps": [{"weight": w, "bake": f"{bake}s"} for w in WEIGHTS]}},
            "analysis": ANALYSIS if analysis else {"interval": f"{bake}s", "metrics": []},
        },
    }
