"""bench/scale.py's result for one size, and the table that compares sizes."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.scale_probe import quantile


@dataclass
class Result:
    services: int
    onboard_seconds: float
    rollout_seconds: float
    finished: int
    step_lag_p50: float
    step_lag_p99: float
    step_lag_max: float
    steps: int
    writes: int
    writes_per_step: float
    reconciles_per_step: float
    cpu_seconds: float
    cpu_rollout_seconds: float  # the controller's, from the new revisions until all promoted
    sandbox_cpu_rollout_seconds: float  # this process's (API server, Knative simulator, bench), same span
    peak_rss_mb: float
    commits_per_step: float = float("nan")  # every write the sandbox committed (the controller's, Knative's)
    analysis_ticks: int = 0
    queries_per_tick: float = float("nan")  # batches (one per source, metric template, window)
    http_queries_per_tick: float = float("nan")  # what Prometheus received (builtins: one per metric family)
    write_breakdown: dict[str, int] = field(default_factory=dict)
    first_from_ready_p50: float = float("nan")  # the first step's lag counted from the revision's Ready alone
    first_from_ready_p99: float = float("nan")
    # per wave ("10%": the step written once the candidate is Ready; "30%": once 10% has baked, ...):
    # p50/p99/max lag, and over how many seconds that wave's steps fell due (first to last)
    waves: dict[str, dict[str, float]] = field(default_factory=dict)
    # with --analysis: the analysis path in parts (bench/scale_parts.py) and Prometheus' own share
    analysis_parts: dict[str, dict[str, float]] = field(default_factory=dict)
    prometheus: dict[str, float] = field(default_factory=dict)
    # with --shards: per replica (shard, services, cpu_rollout_seconds, peak_rss_mb, step_lag_p50/p99)
    shards: list[dict[str, float]] = field(default_factory=list)


def shard_table(results: list[Result]) -> str:
    out = []
    for r in results:
        if not r.shards:
            continue
        out.append(f"\nPer shard, N={r.services}:")
        out.append("  shard  services  step lag p50  step lag p99  CPU (rollouts)  peak RSS")
        for s in r.shards:
            out.append(
                f"  {s['shard']:>5}  {s['services']:>8}  {s['step_lag_p50']:>11.3f}s  {s['step_lag_p99']:>11.3f}s"
                f"  {s['cpu_rollout_seconds']:>13.1f}s  {s['peak_rss_mb']:>6.1f} MB"
            )
    return "\n".join(out)


def table(results: list[Result]) -> str:
    rows = [
        ("services", "services", ""),
        ("onboard (pin all)", "onboard_seconds", "s"),
        ("rollout (all promoted)", "rollout_seconds", "s"),
        ("promoted", "finished", ""),
        ("step lag p50", "step_lag_p50", "s"),
        ("step lag p99", "step_lag_p99", "s"),
        ("step lag max", "step_lag_max", "s"),
        ("first step from Ready p50", "first_from_ready_p50", "s"),
        ("first step from Ready p99", "first_from_ready_p99", "s"),
        ("traffic steps", "steps", ""),
        ("API writes", "writes", ""),
        ("API writes per step", "writes_per_step", ""),
        ("reconciles per step", "reconciles_per_step", ""),
        ("all commits per step", "commits_per_step", ""),
        ("controller CPU (all replicas)", "cpu_seconds", "s"),
        ("  of which rollouts", "cpu_rollout_seconds", "s"),
        ("sandbox CPU, rollouts", "sandbox_cpu_rollout_seconds", "s"),
        ("controller peak RSS (largest)", "peak_rss_mb", "MB"),
        ("analysis ticks", "analysis_ticks", ""),
        ("queries per tick", "queries_per_tick", ""),
        ("HTTP queries per tick", "http_queries_per_tick", ""),
    ]
    width = max(len(r[0]) for r in rows)
    out = [f"{'':<{width}}  " + "  ".join(f"{'N=' + str(r.services):>12}" for r in results)]
    for label, key, unit in rows[1:]:
        cells = "  ".join(f"{str(getattr(r, key)) + unit:>12}" for r in results)
        out.append(f"{label:<{width}}  {cells}")
    return "\n".join(out)


def debug_report(
    timelines: Mapping[str, Any],
    weights: Sequence[int],
    bake: float,
    rollout_commits: Mapping[str, int],
    gc_rollout: Mapping[int, float],
    seen_at: Mapping[tuple[str, int], float],
    applied_at: Mapping[tuple[str, int], float],
    decided_at: Mapping[tuple[str, int], float],
) -> None:
    """SCALE_DEBUG: where a step's time goes, on stderr."""
    print(f"commits by resource during the rollouts: {rollout_commits}", file=sys.stderr)
    print(
        f"the sandbox's garbage collection during the rollouts, seconds by generation: {gc_rollout}",
        file=sys.stderr,
    )
    for w in weights:  # the controller seeing the split served (the watch's delay), and recording it
        shown = [(name, tl.served[w]) for name, tl in timelines.items() if w in tl.served]
        seen = [seen_at[(name, w)] - at for name, at in shown if (name, w) in seen_at]
        written = [applied_at[(name, w)] - at for name, at in shown if (name, w) in applied_at]
        print(
            f"{w}% served -> status written: p50 {quantile(written, 0.5):.3f} "
            f"max {max(written, default=0):.3f}; seen by the controller: p50 {quantile(seen, 0.5):.3f} "
            f"p99 {quantile(seen, 0.99):.3f}",
            file=sys.stderr,
        )
    for w, nxt in zip(weights, (*weights[1:], 100), strict=True):  # a step's lag, in two parts
        parts = [
            (decided_at[(name, nxt)] - (tl.served[w] + bake), tl.writes[nxt] - decided_at[(name, nxt)])
            for name, tl in timelines.items()
            if (name, nxt) in decided_at and w in tl.served and nxt in tl.writes
        ]
        print(
            f"{nxt}% due -> decision recorded: p50 {quantile([a for a, _ in parts], 0.5):.3f} "
            f"p99 {quantile([a for a, _ in parts], 0.99):.3f}; "
            f"-> traffic written: p50 {quantile([b for _, b in parts], 0.5):.3f} "
            f"p99 {quantile([b for _, b in parts], 0.99):.3f}",
            file=sys.stderr,
        )
    for w in (*weights, 100):  # the sandbox's own part: from the traffic write to Knative serving it
        served = [
            tl.served[w] - tl.writes[w] for tl in timelines.values() if w in tl.served and w in tl.writes
        ]
        print(
            f"served {w}% after the write: p50 {quantile(served, 0.5):.3f} max {max(served):.3f}",
            file=sys.stderr,
        )
