"""The sandbox's cost per traffic step on the Knative path alone: store writes and the Knative simulator, on
a virtual clock, without HTTP and without the controller.

    .venv/bin/python bench/knative_steps.py [--services 300] [--baseline 50] [--repeat 3]

N Services are created and pinned (stable 100%, `latest` 0%) with a second revision; then every Service's
spec.traffic is written as the controller's merge patch would leave it, 10/30/60/100% to the candidate, and
the simulator settles each wave. Reported per size (the baseline size first, in the same run): CPU per step
and per commit (the best of --repeat runs: the machine's noise only ever adds), the commits per step (the
traffic write plus the simulator's own) and how many Services ended up served 100% on the candidate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollout_lab.sandbox.apiserver import kinds  # noqa: E402
from tests.sandbox.knative.harness import sandbox, service_manifest, template  # noqa: E402

WEIGHTS = (10, 30, 60, 100)


@dataclass
class Result:
    services: int
    steps: int
    cpu: float
    commits: int
    promoted: int


def traffic(name: str, weight: int) -> list[dict[str, object]]:
    return [
        {"revisionName": f"{name}-00001", "percent": 100 - weight, "tag": "stable"},
        {"revisionName": f"{name}-00002", "percent": weight, "tag": "canary"},
        {"latestRevision": True, "percent": 0, "tag": "latest"},
    ]


async def run(n: int) -> Result:
    names = [f"s{i:04d}" for i in range(n)]
    async with sandbox(ready_delay=0.5) as sb:
        for name in names:
            sb.store.create(kinds.KSERVICES, service_manifest(name))
        await sb.advance(3)
        for name in names:
            pinned = [
                {"revisionName": f"{name}-00001", "percent": 100, "tag": "stable"},
                {"latestRevision": True, "percent": 0, "tag": "latest"},
            ]
            sb.update_service(name, template=template("ghcr.io/acme/hello:v2"), traffic=pinned)
        await sb.advance(3)
        rv = int(sb.store.resource_version)
        started = time.process_time()
        for weight in WEIGHTS:
            for name in names:
                sb.update_service(name, traffic=traffic(name, weight))
            await sb.advance(1)
        cpu = time.process_time() - started
        commits = int(sb.store.resource_version) - rv
        promoted = 0
        for name in names:
            served = sb.service(name)["status"].get("traffic") or []
            promoted += any(
                t.get("revisionName") == f"{name}-00002" and t.get("percent") == 100 for t in served
            )
        return Result(n, n * len(WEIGHTS), cpu, commits, promoted)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--baseline", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for n in [s for s in (args.baseline, args.services) if s > 0]:
        runs = [asyncio.run(run(n)) for _ in range(max(1, args.repeat))]
        rows.append(min(runs, key=lambda r: r.cpu))
    print(
        f"{'services':>8} {'steps':>6} {'CPU/step':>9} {'CPU/commit':>11} {'commits/step':>13} {'promoted':>9}"
    )
    for r in rows:
        print(
            f"{r.services:>8} {r.steps:>6} {1000 * r.cpu / r.steps:>7.2f}ms {1e6 * r.cpu / r.commits:>9.0f}us "
            f"{r.commits / r.steps:>13.2f} {r.promoted:>9}"
        )


if __name__ == "__main__":
    main()
