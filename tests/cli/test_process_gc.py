"""rollout.cli.process_tuning's tuning of the cycle collector: the young collection runs far less often, and
what exists once the controller's caches have synced is out of the collector's sight. Each case runs in a
fresh interpreter: the setting is process-wide."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GC_PROBE = textwrap.dedent(
    """
    import gc, sys
    from rollout.cli.process_tuning import freeze_startup, tune_gc

    if sys.argv[1] == "tuned":
        tune_gc()
    cached = [{"metadata": {"name": f"svc-{i}"}, "spec": {"traffic": [{"percent": 100}]}} for i in range(1000)]
    frozen = freeze_startup() if sys.argv[1] == "tuned" else 0
    scanned = any(o is cached for o in gc.get_objects())
    before = gc.get_stats()[0]["collections"]
    churn = [[i] for i in range(200_000)]  # like decoding a wave of watch events
    del churn
    print(gc.get_stats()[0]["collections"] - before, frozen, scanned)
    """
)


def _gc_probe(mode: str) -> tuple[int, int, bool]:
    out = subprocess.run(
        [sys.executable, "-c", GC_PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    young, frozen, scanned = out.stdout.split()
    return int(young), int(frozen), scanned == "True"


def test_the_tuned_collector_runs_its_young_collection_far_less_often_and_skips_startup() -> None:
    default_young, _, default_scanned = _gc_probe("default")
    tuned_young, frozen, tuned_scanned = _gc_probe("tuned")
    assert default_young >= 200  # 200,000 lists at CPython's threshold of 700
    assert tuned_young <= 12
    assert default_scanned and not tuned_scanned  # what existed at start-up is out of the collector's sight
    assert frozen > 1000
