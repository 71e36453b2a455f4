"""`rollout simulate POLICY_FILE --scenario NAME`: run a policy on simulated traffic before it goes near a
cluster. Prints one run's timeline of weights and verdicts, then numbers over all runs: rollbacks (the
false-rollback rate when the canary is not worse, with a Wilson interval), promotions, time to decision and
blast radius (harm the canary caused: failed requests and requests slower than 500 ms above stable's rate,
plus one hour at 100% when a regression was promoted)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rollout.cli.argtypes import positive_float, positive_int
from rollout_lab.sim.policies import engine_factory, load_policy_file, simulation_problems
from rollout_lab.sim.report import CellSummary, summarise
from rollout_lab.sim.runner import RunResult, simulate
from rollout_lab.sim.scenarios import SCENARIOS


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="run a policy on simulated traffic: timeline, time to decision, blast radius, false rollbacks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("policy", type=Path, metavar="POLICY_FILE", help="a RolloutPolicy YAML file")
    parser.add_argument(
        "--scenario",
        required=True,
        choices=sorted(SCENARIOS),
        # argparse %-formats help strings: descriptions such as "1% of requests" need their % doubled
        help="what the canary does: "
        + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()).replace("%", "%%"),
    )
    parser.add_argument(
        "--rps", type=positive_float, default=20.0, help="mean requests per second (default 20)"
    )
    parser.add_argument("--runs", type=positive_int, default=200, help="independent runs (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec, problems = load_policy_file(args.policy)
    if spec is None:
        for p in problems:
            print(f"{args.policy}: {p}", file=sys.stderr)
        return 2
    reasons = simulation_problems(spec)
    if reasons:
        for r in reasons:
            print(f"{args.policy}: cannot simulate: {r}", file=sys.stderr)
        return 2
    if args.runs < 1 or args.rps <= 0:
        print("rollout simulate: --runs must be >= 1 and --rps > 0", file=sys.stderr)
        return 2
    scenario = SCENARIOS[args.scenario]
    results = simulate(
        engine_factory(spec, trace_runs=1), scenario, args.rps, args.runs, args.seed, trace_runs=1
    )
    summary = summarise("policy", scenario.name, args.rps, scenario.regression, results)
    if args.json:
        print(json.dumps(_json(summary, results[0]), indent=2))
    else:
        print(_text(args, summary, results[0]))
    return 0


def _json(summary: CellSummary, first: RunResult) -> dict[str, Any]:
    out = summary.to_dict()
    out["timeline"] = [{"at": e.at, "weight": e.weight, "note": e.note} for e in first.timeline]
    out["first_run"] = {
        "outcome": first.outcome,
        "decision_seconds": first.decision_seconds,
        "blast_radius": first.blast_radius,
    }
    return out


def _seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}s"


def _text(args: argparse.Namespace, s: CellSummary, first: RunResult) -> str:
    scenario = SCENARIOS[s.scenario]
    lines = [
        f"scenario {s.scenario}: {scenario.description} (baseline error rate {scenario.baseline_error:.2%}), "
        f"{args.rps:g} rps, seed {args.seed}",
        "",
        "run 1:",
    ]
    lines += [f"  {e.at:6.0f}s  {e.weight:3d}%  {e.note}" for e in first.timeline]
    lines.append(
        f"  -> {first.outcome} after {_seconds(first.decision_seconds)}, blast radius {first.blast_radius:.1f}"
    )
    kind = "caught" if s.regression else "false rollbacks"
    lines += [
        "",
        f"{s.runs} runs: rolled back {s.rolled_back} ({kind}: {s.rollback_rate:.2%}, 95% Wilson "
        f"[{s.rollback_rate_lower:.2%}, {s.rollback_rate_upper:.2%}]), promoted {s.promoted}"
        + (f", undecided {s.undecided}" if s.undecided else ""),
        f"time to rollback: median {_seconds(s.median_rollback_seconds)}, p90 {_seconds(s.p90_rollback_seconds)}; "
        f"time to promotion: median {_seconds(s.median_promotion_seconds)}",
        f"blast radius: mean {s.mean_blast_radius:.1f} harmed requests"
        + (" (a promoted regression adds 1 h at 100%)" if s.regression else ""),
    ]
    return "\n".join(lines)
