"""bench/flagger_sweep.py: every Flagger setting on the same traffic as our default policy, marked safe or
not by its false rollbacks, and compared with ours where it is safe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sweep_marks_trigger_happy_settings_unsafe_and_compares_the_safe_ones() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "flagger_sweep.py"), "--rps", "20", "--runs", "400",
         "--regression-runs", "40", "--workers", "2"],
        capture_output=True, text=True, timeout=300, check=True, cwd=ROOT,
    )  # fmt: skip
    rows = {
        line.split()[1]: line.split()
        for line in proc.stdout.splitlines()
        if line.strip().startswith("flagger ") and "setting" not in line
    }
    assert len(rows) == 12  # 3 intervals x 4 thresholds
    assert rows["15s/1"][4] == "no"  # one failed check of 15 s rolls back nearly every identical canary
    safe = [r for r in rows.values() if r[4] == "yes"]
    assert safe  # 0 of 400 false rollbacks: upper bound 0.95%
    assert all(" ".join(r[8:]) in {"dominated by ours", "smaller blast radius", "promotes sooner",
                                   "BEATS OURS on both"} for r in safe)  # fmt: skip
    assert all(r[7].endswith("%") for r in rows.values())  # tail-only latency caught, by default
    assert "20 rps: ours A/A" in proc.stdout and "latency-tail caught" in proc.stdout
    assert "latency-tail: the best safe setting (flagger " in proc.stdout
