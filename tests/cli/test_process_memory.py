"""rollout.cli.process_tuning: with glibc's mmap threshold held, blocks of a few MB freed by a worker thread go
back to the system; with glibc's dynamic threshold they stay in the thread's arena (what made the controller's
RSS climb at every analysis tick). Each case runs in a fresh interpreter: the setting is process-wide."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rollout.cli.process_tuning import _glibc

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import os, sys, threading
    from rollout.cli.process_tuning import hold_mmap_threshold

    if sys.argv[1] == "hold":
        assert hold_mmap_threshold()

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def work() -> None:  # like an analysis tick: an 8 MB answer decoded and dropped, a few times
        for _ in range(4):
            block = b"x" * (8 << 20)
            del block

    thread = threading.Thread(target=work)
    before = rss()
    thread.start()
    thread.join()
    print((rss() - before) / 2**20)
    """
)

pytestmark = pytest.mark.skipif(
    _glibc() is None or not Path("/proc/self/statm").exists(), reason="needs glibc and /proc"
)


def _retained_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    return float(out.stdout.strip())


def test_freed_blocks_go_back_to_the_system_with_the_threshold_held() -> None:
    assert _retained_mb("hold") < 2.0


def test_without_it_glibc_keeps_them() -> None:
    """The behaviour the setting exists for (if a glibc stops doing this, the setting is no longer needed)."""
    assert _retained_mb("default") >= 6.0
