"""What a reconcile pays to read a target's Rollouts: the plain parse (`parse_rollout`) against the controller's
`RolloutParser`, which validates each distinct embedded policy once.

    .venv/bin/python bench/parse_rollouts.py [--history 10] [--repeat 5]

For every policy in policies/, a Rollout as the controller writes it (spec with the embedded policy, a
running status with conditions and traffic), and a target's full read: one running Rollout plus `--history`
finished ones, as a target with that many kept in its history has. CPU per parse and per read, the best of
`--repeat` runs (the machine's noise only ever adds), both ways in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollout.api.load import parse_rollout  # noqa: E402
from rollout.api.rollout import Phase, TrafficEntry  # noqa: E402
from rollout.controller.parsed import RolloutParser  # noqa: E402
from tests.controller.objects import rollout  # noqa: E402

CONDITIONS = ("Ready", "Progressing", "TrafficApplied", "AnalysisPassing")


def rollout_object(policy: dict[str, Any], n: int, phase: Phase) -> dict[str, Any]:
    traffic = [
        TrafficEntry(revision_name="hello-00001", percent=70, tag="stable"),
        TrafficEntry(revision_name=f"hello-{n + 2:05d}", percent=30, tag="canary"),
    ]
    body = rollout(candidate=f"hello-{n + 2:05d}", phase=phase, traffic=traffic, policy=policy).to_wire()
    body["metadata"].update(name=f"hello-{n + 2:05d}.1", namespace="default", resourceVersion=str(100 + n))
    body["status"]["conditions"] = [
        {
            "type": t,
            "status": "True",
            "reason": "Ok",
            "message": "",
            "lastTransitionTime": "2026-11-26T08:00:00Z",
        }
        for t in CONDITIONS
    ]
    return body


def best_of(repeat: int, fn: Callable[[], object], n: int) -> float:
    """Microseconds per call, the best of `repeat` timings of n calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def measure(spec: dict[str, Any], history: int, repeat: int, calls: int) -> tuple[int, list[float]]:
    """The JSON size of one Rollout, and µs per parse and per read, plain and through a RolloutParser."""
    one = rollout_object(spec, 0, Phase.PROGRESSING)
    read = [one] + [rollout_object(spec, i + 1, Phase.SUCCEEDED) for i in range(history)]
    shared = RolloutParser()
    for obj in read:
        assert shared.parse(obj) == parse_rollout(obj)  # the same models, both ways
    reads = max(calls // len(read), 1)
    return len(json.dumps(one)), [
        best_of(repeat, lambda: parse_rollout(one), calls),
        best_of(repeat, lambda: shared.parse(one), calls),
        best_of(repeat, lambda: [parse_rollout(o) for o in read], reads),
        best_of(repeat, lambda: [shared.parse(o) for o in read], reads),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--history", type=int, default=10, help="finished Rollouts kept per target")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="parses per timing")
    args = parser.parse_args()
    widths = (15, 10, 14, 10)
    print(
        f"{'policy':<26}{'JSON bytes':>11}{'parse, plain':>15}{'parser':>10}{'read, plain':>14}{'parser':>10}"
        f"   (µs of CPU; a read: 1 running + {args.history} finished Rollouts)"
    )
    for path in sorted((ROOT / "policies").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())["spec"]
        size, cells = measure(spec, args.history, args.repeat, args.calls)
        print(
            f"{path.name:<26}{size:>11}" + "".join(f"{c:>{w}.1f}" for c, w in zip(cells, widths, strict=True))
        )


if __name__ == "__main__":
    main()
