#!/usr/bin/env python3
"""Decision benchmark: our default policy vs Flagger's documented analysis vs Knative's rollout-duration, on
the same simulated traffic (same seeds), for A/A, errors x2, +5 points, latency x1.2, tail-only latency and a
better canary, at 1, 20 and 200 requests per second. Prints a table and the issue's targets (met or missed);
`--json` prints one object per (policy, scenario, rps).

    .venv/bin/python bench/decisions.py            # the full benchmark (2 worker processes)
    .venv/bin/python bench/decisions.py --quick    # a small version (the test suite runs it)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout.api.load import parse_policy_spec
from rollout_lab.sim.counters import ScrapeModel
from rollout_lab.sim.policies import (
    DEFAULT_POLICY,
    default_policy,
    engine_factory,
    flagger_factory,
    knative_factory,
    load_policy_file,
)
from rollout_lab.sim.report import summarise
from rollout_lab.sim.runner import DriverFactory, simulate
from rollout_lab.sim.scenarios import SCENARIOS

OURS, FLAGGER, KNATIVE = "knative-rollout", "flagger", "knative-duration"
POLICIES = (OURS, FLAGGER, KNATIVE)
SCENARIO_NAMES = ("aa", "errors-x2", "errors-plus-5pp", "latency-x1.2", "latency-tail", "canary-better")
EXTENDED = ("aa-base1pct", "errors-x2-base1pct", "errors-100pct", "latency-p99-x1.2", "cold-start")
RPS = (1.0, 20.0, 200.0)
GOOD = ("aa", "canary-better", "aa-base1pct", "cold-start")  # no regression: every rollback is a false one


@dataclass(frozen=True)
class Task:
    policy: str
    scenario: str
    rps: float
    runs: int
    seed: int
    spec: dict[str, Any]
    extrapolate: bool = False  # the simulated Prometheus answers as PromQL's increase() does


def _factory(task: Task) -> DriverFactory:
    if task.policy == OURS:
        spec, problems = parse_policy_spec(task.spec)
        if spec is None:
            raise SystemExit(f"invalid policy: {problems}")
        return engine_factory(spec, trace_runs=0)
    if task.policy == FLAGGER:
        return flagger_factory()
    return knative_factory(300.0)


def run_task(task: Task) -> dict[str, Any]:
    scenario = SCENARIOS[task.scenario]
    started = time.perf_counter()
    scrape = ScrapeModel(extrapolate=task.extrapolate)
    results = simulate(_factory(task), scenario, task.rps, task.runs, task.seed, scrape=scrape)
    summary = summarise(task.policy, task.scenario, task.rps, scenario.regression, results).to_dict()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def tasks(
    scenarios: Sequence[str],
    rps_levels: Sequence[float],
    good_runs: int,
    bad_runs: int,
    seed: int,
    spec: dict[str, Any],
) -> list[Task]:
    out: list[Task] = []
    for si, name in enumerate(scenarios):
        for ri, rps in enumerate(rps_levels):
            runs = good_runs if name in GOOD else bad_runs
            cell_seed = seed * 10_000 + si * 100 + ri  # the same traffic for every policy
            out.extend(Task(p, name, rps, runs, cell_seed, spec) for p in POLICIES)
    # The engine's cells are the slow ones: start them first so the workers finish together.
    return sorted(out, key=lambda t: (t.policy != OURS, -t.runs))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def table(cells: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'scenario':<20} {'rps':>5} {'policy':<17} {'runs':>5} {'rollback rate [95% Wilson]':>27} "
        f"{'missed':>6} {'rollback s':>10} {'p90':>5} {'promote s':>9} {'blast radius':>12}"
    )
    lines = [head, "-" * len(head)]
    order = {name: i for i, name in enumerate((*SCENARIO_NAMES, *EXTENDED))}
    for c in sorted(
        cells, key=lambda c: (order.get(c["scenario"], 99), c["rps"], POLICIES.index(c["policy"]))
    ):
        rate = (
            f"{_pct(c['rollback_rate'])} [{_pct(c['rollback_rate_lower'])}, {_pct(c['rollback_rate_upper'])}]"
        )
        missed = "-" if c["missed_regressions"] is None else str(c["missed_regressions"])
        lines.append(
            f"{c['scenario']:<20} {c['rps']:>5g} {c['policy']:<17} {c['runs']:>5} {rate:>27} {missed:>6} "
            f"{_s(c['median_rollback_seconds']):>10} {_s(c['p90_rollback_seconds']):>5} "
            f"{_s(c['median_promotion_seconds']):>9} {c['mean_blast_radius']:>12.1f}"
        )
    return "\n".join(lines)


def _cell(cells: Sequence[dict[str, Any]], policy: str, scenario: str, rps: float) -> dict[str, Any] | None:
    return next((c for c in cells if (c["policy"], c["scenario"], c["rps"]) == (policy, scenario, rps)), None)


# below this load a good canary takes longer than Flagger's fixed ladder: each step waits for
# analysis.minStepRequests candidate requests instead of promoting on its bake time alone
QUIET_RPS = 5.0


def targets(cells: Sequence[dict[str, Any]], ladder_ok: bool) -> list[tuple[bool, str]]:
    """The issue's targets for our default policy, each with the numbers behind it."""
    out: list[tuple[bool, str]] = []
    for rps in RPS:
        c = _cell(cells, OURS, "aa", rps)
        if c is not None:
            ok = c["rollback_rate_upper"] <= 0.01 and c["runs"] >= 2000
            out.append(
                (
                    ok,
                    f"A/A at {rps:g} rps: false rollbacks {c['rolled_back']}/{c['runs']}, upper Wilson "
                    f"{_pct(c['rollback_rate_upper'])} (target <= 1.00% with >= 2000 runs)",
                )
            )
    ours, flagger = (
        _cell(cells, OURS, "errors-plus-5pp", 200.0),
        _cell(cells, FLAGGER, "errors-plus-5pp", 200.0),
    )
    if ours and flagger:
        ok = ours["mean_blast_radius"] <= flagger["mean_blast_radius"] / 10
        out.append(
            (
                ok,
                f"+5 points at 200 rps: blast radius {ours['mean_blast_radius']:.1f} vs Flagger "
                f"{flagger['mean_blast_radius']:.1f} (target <= 1/10: {flagger['mean_blast_radius'] / 10:.1f})",
            )
        )
    for rps in RPS:
        ours, flagger = _cell(cells, OURS, "errors-x2", rps), _cell(cells, FLAGGER, "errors-x2", rps)
        if ours and flagger:
            ok = ours["mean_blast_radius"] < flagger["mean_blast_radius"]
            out.append(
                (
                    ok,
                    f"errors x2 at {rps:g} rps: blast radius {ours['mean_blast_radius']:.1f} vs Flagger "
                    f"{flagger['mean_blast_radius']:.1f} (target: strictly lower)",
                )
            )
    c = _cell(cells, OURS, "errors-plus-5pp", 1.0)
    if c is not None:
        out.append(
            (
                c["rollback_rate"] >= 0.8,
                f"+5 points at 1 rps: caught {c['rolled_back']}/{c['runs']} = {_pct(c['rollback_rate'])} "
                f"(Wilson [{_pct(c['rollback_rate_lower'])}, {_pct(c['rollback_rate_upper'])}]; target >= 80%)",
            )
        )
    for rps in RPS:
        ours, flagger = _cell(cells, OURS, "aa", rps), _cell(cells, FLAGGER, "aa", rps)
        if rps < QUIET_RPS:
            continue  # a quiet service waits for evidence (analysis.minStepRequests), by design
        if ours and flagger and ours["median_promotion_seconds"] and flagger["median_promotion_seconds"]:
            ok = ours["median_promotion_seconds"] <= flagger["median_promotion_seconds"] and ladder_ok
            out.append(
                (
                    ok,
                    f"good canary at {rps:g} rps: median promotion {_s(ours['median_promotion_seconds'])}s "
                    f"vs Flagger {_s(flagger['median_promotion_seconds'])}s; canary requests per rollout "
                    f"{ours['mean_canary_requests']:.0f} vs {flagger['mean_canary_requests']:.0f}; ladder steps "
                    f"{'no larger' if ladder_ok else 'LARGER'} than Flagger's (target: no longer, no more per step)",
                )
            )
    c = _cell(cells, OURS, "latency-x1.2", 20.0)
    if c is not None:
        out.append(
            (
                c["rollback_rate"] >= 0.95,
                f"latency x1.2 at 20 rps: caught {c['rolled_back']}/{c['runs']} = "
                f"{_pct(c['rollback_rate'])} (Wilson [{_pct(c['rollback_rate_lower'])}, "
                f"{_pct(c['rollback_rate_upper'])}]; target >= 95%)",
            )
        )
    return out


def ladder_no_larger_than_flagger(spec: Any) -> bool:
    """Every weight step adds at most Flagger's stepWeight (10) and stays at or below its maxWeight (50)."""
    if spec.strategy.canary is None:
        return False
    weights = [s.weight for s in spec.strategy.canary.ladder() if s.weight is not None]
    steps = [b - a for a, b in zip([0, *weights], weights, strict=False)]
    return bool(weights) and max(steps) <= 10 and max(weights) <= 50


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="few runs and cells (seconds, for the test suite)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON: one object per (policy, scenario, rps)"
    )
    parser.add_argument("--extended", action="store_true", help="also: " + ", ".join(EXTENDED))
    parser.add_argument("--scenarios", help="comma-separated scenarios instead of the standard set")
    parser.add_argument(
        "--runs", type=int, default=2000, help="runs per cell without a regression (default 2000)"
    )
    parser.add_argument(
        "--regression-runs", type=int, default=500, help="runs per regression cell (default 500)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy", type=Path, help="our policy from this file instead of the default policy")
    parser.add_argument(
        "--promql-increase",
        action="store_true",
        help="the simulated Prometheus answers as PromQL's increase() does (samples inside the window, "
        "extrapolated to its edges) instead of exact counts",
    )
    args = parser.parse_args(argv)

    if args.policy is not None:
        spec, problems = load_policy_file(args.policy)
        if spec is None:
            print("\n".join(str(p) for p in problems), file=sys.stderr)
            return 2
        spec_data = spec.to_wire()
    else:
        spec, spec_data = default_policy(), DEFAULT_POLICY
    if args.quick:
        todo = tasks(("aa",), RPS, 300, 0, args.seed, spec_data)
        todo += tasks(("errors-plus-5pp",), (200.0,), 0, 100, args.seed, spec_data)
        todo += tasks(("latency-x1.2",), (20.0,), 0, 100, args.seed, spec_data)
    else:
        names = SCENARIO_NAMES + (EXTENDED if args.extended else ())
        if args.scenarios:
            names = tuple(n.strip() for n in args.scenarios.split(",") if n.strip())
            unknown = [n for n in names if n not in SCENARIOS]
            if unknown:
                print(
                    f"unknown scenarios: {', '.join(unknown)}; known: {', '.join(SCENARIOS)}", file=sys.stderr
                )
                return 2
        todo = tasks(names, RPS, args.runs, args.regression_runs, args.seed, spec_data)

    if args.promql_increase:
        todo = [dataclasses.replace(t, extrapolate=True) for t in todo]
    started = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            cells = list(pool.imap_unordered(run_task, todo))
    else:
        cells = [run_task(t) for t in todo]
    elapsed = time.perf_counter() - started

    if args.json:
        print(json.dumps(cells, indent=1))
        return 0
    command = "bench/decisions.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"$ {command.strip()}   ({len(cells)} cells, {elapsed:.0f} s with {args.workers} workers)\n")
    print(table(cells))
    print("\nTargets for our default policy:")
    for ok, text in targets(cells, ladder_no_larger_than_flagger(spec)):
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
