"""Numbers over many simulated runs of one (policy, scenario, load)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rollout.engine.judges.sequential import wilson_interval
from rollout_lab.sim.drivers import PROMOTED, ROLLED_BACK
from rollout_lab.sim.runner import RunResult


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class CellSummary:
    policy: str
    scenario: str
    rps: float
    runs: int
    regression: bool
    rolled_back: int
    promoted: int
    undecided: int  # neither within the simulated time (stuck, or another terminal phase)
    rollback_rate: float
    rollback_rate_lower: float  # Wilson 95%
    rollback_rate_upper: float
    missed_regressions: int | None  # regression scenarios: promoted runs
    median_rollback_seconds: float | None
    p90_rollback_seconds: float | None
    median_promotion_seconds: float | None
    p90_promotion_seconds: float | None
    median_decision_seconds: float | None
    mean_blast_radius: float
    mean_canary_requests: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    policy: str, scenario: str, rps: float, regression: bool, results: Sequence[RunResult]
) -> CellSummary:
    runs = len(results)
    rolled = [
        r.decision_seconds for r in results if r.outcome == ROLLED_BACK and r.decision_seconds is not None
    ]
    promoted = [
        r.decision_seconds for r in results if r.outcome == PROMOTED and r.decision_seconds is not None
    ]
    decided = [r.decision_seconds for r in results if r.decision_seconds is not None]
    low, high = wilson_interval(len(rolled), runs)
    return CellSummary(
        policy=policy,
        scenario=scenario,
        rps=rps,
        runs=runs,
        regression=regression,
        rolled_back=len(rolled),
        promoted=len(promoted),
        undecided=runs - len(rolled) - len(promoted),
        rollback_rate=len(rolled) / runs if runs else 0.0,
        rollback_rate_lower=low,
        rollback_rate_upper=high,
        missed_regressions=len(promoted) if regression else None,
        median_rollback_seconds=_median(rolled),
        p90_rollback_seconds=_quantile(rolled, 0.9),
        median_promotion_seconds=_median(promoted),
        p90_promotion_seconds=_quantile(promoted, 0.9),
        median_decision_seconds=_median(decided),
        mean_blast_radius=sum(r.blast_radius for r in results) / runs if runs else 0.0,
        mean_canary_requests=sum(r.canary_requests for r in results) / runs if runs else 0.0,
    )
