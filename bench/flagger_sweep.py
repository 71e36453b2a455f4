#!/usr/bin/env python3
"""Our default policy against every Flagger setting a user could pick: interval {15 s, 30 s, 1 m} x threshold
{1, 2, 5, 10}, on the simulator's traffic at several request rates (same seeds for every policy).

A Flagger setting is "safe" at a rate when its false rollbacks on identical canaries (A/A) stay at or below
1% (upper 95% Wilson bound). For each rate the table says, for every safe setting, whether our default policy
dominates it (no larger blast radius on +5 points of errors and no later promotion of a good canary), or
where the setting beats ours; the unsafe ones are listed for completeness. `--catch` adds regressions whose
catch rate each setting gets a column for (default: tail-only latency), and names the best safe setting's.

    .venv/bin/python bench/flagger_sweep.py                  # rates 1, 5, 20, 200, 2000
    .venv/bin/python bench/flagger_sweep.py --rps 20,200 --runs 500 --regression-runs 200
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollout_lab.sim.policies import default_policy, engine_factory, flagger_factory  # noqa: E402
from rollout_lab.sim.report import summarise  # noqa: E402
from rollout_lab.sim.runner import simulate  # noqa: E402
from rollout_lab.sim.scenarios import SCENARIOS  # noqa: E402

INTERVALS = (15.0, 30.0, 60.0)
THRESHOLDS = (1, 2, 5, 10)
RATES = (1.0, 5.0, 20.0, 200.0, 2000.0)
GOOD, BAD = "aa", "errors-plus-5pp"
SAFE_UPPER = 0.01
OURS = "ours"


@dataclass(frozen=True)
class Cell:
    policy: str  # OURS or "flagger <interval>s/<threshold>"
    interval: float
    threshold: int
    scenario: str
    rps: float
    runs: int
    seed: int


def run_cell(cell: Cell) -> dict[str, Any]:
    if cell.policy == OURS:
        factory = engine_factory(default_policy(), trace_runs=0)
    else:
        factory = flagger_factory(cell.interval, cell.threshold)
    scenario = SCENARIOS[cell.scenario]
    results = simulate(factory, scenario, cell.rps, cell.runs, cell.seed)
    out = summarise(cell.policy, cell.scenario, cell.rps, scenario.regression, results).to_dict()
    out.update({"interval": cell.interval, "threshold": cell.threshold})
    return out


def cells(
    rates: Sequence[float], good_runs: int, bad_runs: int, seed: int, catch: Sequence[str] = ()
) -> list[Cell]:
    out: list[Cell] = []
    settings = [(OURS, 0.0, 0)] + [(f"flagger {i:g}s/{t}", i, t) for i in INTERVALS for t in THRESHOLDS]
    for ri, rps in enumerate(rates):
        for si, scenario in enumerate((GOOD, BAD, *catch)):
            runs = good_runs if scenario == GOOD else bad_runs
            cell_seed = seed * 10_000 + si * 100 + ri  # the same traffic for every policy
            out.extend(Cell(p, i, t, scenario, rps, runs, cell_seed) for p, i, t in settings)
    return sorted(out, key=lambda c: c.policy != OURS)  # ours are the slow ones


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def verdict(ours_blast: float, ours_time: float | None, blast: float, promote: float | None) -> str:
    """How a safe setting compares with ours: dominated by ours, or where it does better."""
    better_blast = blast < ours_blast
    better_time = promote is not None and (ours_time is None or promote < ours_time)
    if better_blast and better_time:
        return "BEATS OURS on both"
    if better_blast:
        return "smaller blast radius"
    if better_time:
        return "promotes sooner"
    return "dominated by ours"


def _caught(cell: dict[str, Any]) -> str:
    return f"{100 * cell['rollback_rate']:.1f}%"


def report(found: Sequence[dict[str, Any]], rates: Sequence[float], catch: Sequence[str] = ()) -> str:
    by = {(c["policy"], c["scenario"], c["rps"]): c for c in found}
    lines: list[str] = []
    for rps in rates:
        ours_good, ours_bad = by[(OURS, GOOD, rps)], by[(OURS, BAD, rps)]
        ours_blast, ours_time = ours_bad["mean_blast_radius"], ours_good["median_promotion_seconds"]
        caught = "".join(f", {s} caught {_caught(by[(OURS, s, rps)])}" for s in catch)
        lines += [
            f"\n{rps:g} rps: ours A/A {100 * ours_good['rollback_rate']:.2f}% "
            f"(upper {100 * ours_good['rollback_rate_upper']:.2f}%), +5 points blast radius {ours_blast:.1f}, "
            f"good canary promoted in {_num(ours_time)} s{caught}",
            f"  {'flagger setting':<20} {'A/A [upper]':>18} {'safe':>5} {'blast':>8} {'promote s':>10}"
            + "".join(f" {s:>16}" for s in catch)
            + "  vs ours",
        ]
        best: dict[str, tuple[float, str]] = {}
        for interval in INTERVALS:
            for threshold in THRESHOLDS:
                name = f"flagger {interval:g}s/{threshold}"
                good, bad = by[(name, GOOD, rps)], by[(name, BAD, rps)]
                safe = good["rollback_rate_upper"] <= SAFE_UPPER
                promote = good["median_promotion_seconds"]
                rate = f"{100 * good['rollback_rate']:.2f}% [{100 * good['rollback_rate_upper']:.2f}%]"
                versus = verdict(ours_blast, ours_time, bad["mean_blast_radius"], promote) if safe else "-"
                for s in catch:
                    if safe and by[(name, s, rps)]["rollback_rate"] > best.get(s, (-1.0, ""))[0]:
                        best[s] = (by[(name, s, rps)]["rollback_rate"], name)
                lines.append(
                    f"  {name:<20} {rate:>18} {'yes' if safe else 'no':>5} {bad['mean_blast_radius']:>8.1f} "
                    f"{_num(promote):>10}"
                    + "".join(f" {_caught(by[(name, s, rps)]):>16}" for s in catch)
                    + f"  {versus}"
                )
        for s, (top, setting) in best.items():
            ours = by[(OURS, s, rps)]["rollback_rate"]
            lines.append(
                f"  {s}: the best safe setting ({setting}) catches {100 * top:.1f}%, ours {100 * ours:.1f}%"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rps", default=",".join(f"{r:g}" for r in RATES), help="comma-separated rates")
    parser.add_argument("--runs", type=int, default=1000, help="A/A runs per cell (default 1000)")
    parser.add_argument(
        "--regression-runs", type=int, default=300, help="+5 points runs per cell (default 300)"
    )
    parser.add_argument(
        "--catch",
        default="latency-tail",
        help="comma-separated regression scenarios to report catch rates for (default latency-tail; '' none)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        rates = [float(r) for r in args.rps.split(",") if r.strip()]
    except ValueError:
        print(f"--rps: expected comma-separated numbers, got {args.rps!r}", file=sys.stderr)
        return 2
    catch = [c for c in args.catch.split(",") if c.strip()]
    unknown = [c for c in catch if c not in SCENARIOS or not SCENARIOS[c].regression]
    if unknown:
        print(f"--catch: {', '.join(unknown)} is not a regression scenario", file=sys.stderr)
        return 2
    todo = cells(rates, args.runs, args.regression_runs, args.seed, catch)
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        found = list(pool.imap_unordered(run_cell, todo))
    command = "bench/flagger_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"$ {command.strip()}   ({len(found)} cells, {time.perf_counter() - started:.0f} s)")
    print(report(found, rates, catch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
