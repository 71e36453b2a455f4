"""The work queue's own cost per key: this checkout's rollout.kube.workqueue against another revision's.

    .venv/bin/python bench/workqueue.py [REV] [--keys 20000] [--rounds 2]

REV (default HEAD) is a git revision whose rollout/kube/workqueue.py is the baseline; the working tree's is the
other side. Workers (8 and 48, as the controller's default) take keys as a producer adds them, four at a time,
and spend 2 ms "in I/O" (a sleep, as a write's round trip) on each. The CPU of the whole run divided by the
keys is the queue's and the event loop's cost per key, since the workers themselves do nothing else. Runs go
in the order A B, B A, ... so that a drift in the machine's speed favours neither side.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "rollout/kube/workqueue.py"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look the module up by name
    spec.loader.exec_module(module)
    return module


async def run(module: ModuleType, workers: int, keys: int) -> tuple[float, float]:
    """CPU µs per key, wall seconds."""
    queue = module.WorkQueue()
    done = 0
    all_done = asyncio.Event()

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                key = await queue.get()
            except module.QueueShutDown:
                return
            await asyncio.sleep(0.002)
            done += 1
            queue.done(key)
            if done == keys:
                all_done.set()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    await asyncio.sleep(0.01)
    cpu, wall = time.process_time(), time.monotonic()
    for i in range(keys):
        queue.add(i)
        if i % 4 == 3:
            await asyncio.sleep(0.0005)
    await all_done.wait()
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    queue.shutdown()
    await asyncio.gather(*tasks)
    return cpu / keys * 1e6, wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", nargs="?", default="HEAD", help="the baseline's git revision (default HEAD)")
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    base_source = subprocess.run(
        ["git", "show", f"{args.rev}:{SOURCE}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        base_path = Path(tmp) / "workqueue_base.py"
        base_path.write_text(base_source)
        sides = {"A": load(base_path, "workqueue_base"), "B": load(ROOT / SOURCE, "workqueue_new")}
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for r in range(args.rounds):
            for side in "AB" if r % 2 == 0 else "BA":
                for workers in (8, 48):
                    results.setdefault((side, workers), []).append(
                        asyncio.run(run(sides[side], workers, args.keys))
                    )
    print(
        f"A = {args.rev}:{SOURCE}, B = the working tree's; {args.keys} keys per run, {args.rounds} runs each"
    )
    print(f"{'side':<6}{'workers':>8}{'CPU µs per key (each run)':>34}{'wall s (each run)':>26}")
    for (side, workers), runs in sorted(results.items()):
        cpus = " / ".join(f"{c:.1f}" for c, _ in runs)
        walls = " / ".join(f"{w:.2f}" for _, w in runs)
        print(f"{side:<6}{workers:>8}{cpus:>34}{walls:>26}")


if __name__ == "__main__":
    main()
