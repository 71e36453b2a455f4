"""Compare two commits (or two settings) with bench/scale.py, alternating their runs.

    .venv/bin/python bench/interleave.py BASE [NEW] [--rounds 4] [-- SCALE_ARGS...]
    .venv/bin/python bench/interleave.py . --a-args "--workers 16" --b-args "--workers 48"

A machine's speed can drift by a quarter or more within minutes (a shared 2-CPU host does), so one run of A
followed by one run of B says little at the 1 s scale. This runs A and B in turn, `--rounds` each, in the
order A B, B A, A B, ... (a steady drift in the machine's speed then favours neither side; `--order ab` runs
A first in every round), and prints every run and the medians side by side. A and B are git revisions: each
is checked out into a temporary worktree (`.` names the working tree as it is, uncommitted changes included;
NEW defaults to it), and bench/scale.py runs from there with this checkout's virtualenv, so the controller it
starts is that revision's too. The sizes default to one N=1000 run per side and round (`--services 1000
--baseline 0`); anything after `--` goes to bench/scale.py as it is.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = (
    ("step lag p50", "step_lag_p50", "s"),
    ("step lag p99", "step_lag_p99", "s"),
    ("rollout", "rollout_seconds", "s"),
    ("reconciles/step", "reconciles_per_step", ""),
    ("controller CPU", "cpu_rollout_seconds", "s"),
    ("sandbox CPU", "sandbox_cpu_rollout_seconds", "s"),
    ("peak RSS", "peak_rss_mb", "MB"),
    ("(c) p99", "decided_p99", "s"),  # with --analysis: window end -> decision recorded
    ("Prometheus CPU", "prometheus_cpu", "s"),  # with --analysis
)
DECIDED = "(c) window end -> decision recorded"


@contextmanager
def checkout(revision: str | None) -> Iterator[Path]:
    """A directory holding `revision` (None or ".": this working tree, as it is)."""
    if revision is None or revision == ".":
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="interleave-") as tmp:
        where = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), revision], check=True
        )
        try:
            yield where
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False)


def run_once(tree: Path, args: list[str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "bench/scale.py", "--json", *args],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(out.stdout)
    largest = results[-1]
    parts = largest.get("analysis_parts") or {}
    largest["decided_p99"] = parts[DECIDED]["p99"] if DECIDED in parts else None
    largest["prometheus_cpu"] = (largest.get("prometheus") or {}).get("cpu_seconds")
    return largest


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}{unit}" if unit == "s" else f"{round(value, 2):g}{unit}"


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def row(label: str, result: dict[str, Any]) -> str:
    cells = [_cell(result.get(key), unit) for _, key, unit in COLUMNS]
    return f"{label:<12}" + "".join(f"{c:>17}" for c in cells)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base", help="revision A (git rev; '.': the working tree)")
    parser.add_argument("new", nargs="?", help="revision B (default and '.': the working tree as it is)")
    parser.add_argument(
        "--rounds", type=int, default=4, help="runs per side (even: as many of A first as of B)"
    )
    parser.add_argument("--a-args", default="", help="extra bench/scale.py arguments for A only")
    parser.add_argument("--b-args", default="", help="extra bench/scale.py arguments for B only")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument(
        "--order",
        choices=("ab", "abba"),
        default="abba",
        help="abba (default): A B, B A, A B, ... so that a drift in the machine's speed favours neither side; "
        "ab: A B in every round",
    )
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    common = argv[cut + 1 :] or ["--services", "1000", "--baseline", "0"]
    sides = {"A": [*common, *shlex.split(args.a_args)], "B": [*common, *shlex.split(args.b_args)]}
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    with checkout(args.base) as tree_a, checkout(args.new) as tree_b:
        trees = {"A": tree_a, "B": tree_b}
        for n in range(1, args.rounds + 1):
            for side in ("B", "A") if args.order == "abba" and n % 2 == 0 else ("A", "B"):
                result = run_once(trees[side], sides[side], args.timeout)
                runs[side].append(result)
                print(row(f"{side} run {n}", result), flush=True)
    print(f"\nA = {args.base} {' '.join(sides['A'])}")
    print(f"B = {args.new or 'working tree'} {' '.join(sides['B'])}")
    print(f"{'':<12}" + "".join(f"{name:>17}" for name, _, _ in COLUMNS))
    for side in ("A", "B"):
        for result in runs[side]:
            print(row(side, result))
    for side in ("A", "B"):
        medians = {key: _median([r.get(key) for r in runs[side]]) for _, key, _ in COLUMNS}
        print(row(f"{side} median", medians))


if __name__ == "__main__":
    main()
