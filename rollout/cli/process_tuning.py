"""Memory tuning for the controller process: glibc's malloc gives large blocks back to the system when freed,
and Python's cycle collector runs less often and skips what start-up built.

An analysis tick decodes Prometheus answers of several MB in worker threads (rollout.analysis.prometheus), and
the informers decode list and watch answers in the event loop. glibc serves a block above its mmap threshold
(128 KiB at start) with its own mmap and unmaps it on free, but it raises that threshold to the size of every
such block freed (up to 32 MiB): from then on, blocks of a few MB come from the threads' malloc arenas, whose
free memory glibc returns only from the top of each arena. In bench/scale.py --analysis at 1,000 Services the
controller's RSS rose by 20-50 MB at each step of the rollouts and never came down (peak 301 MB); with the
threshold held at 256 KiB (what MALLOC_MMAP_THRESHOLD_=262144 does) the peak was 249 MB in the same benchmark.

`hold_mmap_threshold` is what the controller calls at start (ControllerConfig.malloc_mmap_threshold); it is a
no-op without glibc (musl, macOS), where the allocator has no such threshold to hold.

The cycle collector: with the default first threshold (700 container allocations), decoding the watch events
and API answers of a wave of steps ran a young collection every few hundred microseconds, and the full
collections that follow walked every object the process holds (the informers' caches, the imported client
libraries): in bench/scale.py at 1,000 Services the controller spent 4.7 s of its 26 s of CPU collecting, with
pauses of up to 265 ms. `tune_gc` raises the first threshold (the others keep their defaults, so the full
collections keep their rhythm relative to the young ones), and `freeze_startup` moves what exists once the
caches have synced (modules, classes, the first listing) out of the collector's sight: those objects are still
freed by reference counting when they go; only cycles among them would stay. With both, the same benchmark
measured 1.0 s of collecting (pauses up to 144 ms, in the start-up burst) and the same peak RSS (~171 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import structlog

log = structlog.get_logger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
DEFAULT_MMAP_THRESHOLD = 256 * 1024
# container allocations (net) between young collections; CPython's default is 700
DEFAULT_GC_THRESHOLD = 20_000


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- present in glibc only
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def hold_mmap_threshold(threshold: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes (which also stops its dynamic adjustment), so every
    block at least that large is returned to the system when freed. False when not applied: no glibc, or a
    value glibc refuses."""
    libc = _glibc()
    if libc is None:
        log.debug("malloc tuning skipped: not glibc")
        return False
    applied = bool(libc.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(threshold)))
    if not applied:
        log.warning("glibc refused the mmap threshold", threshold=threshold)
    return applied


def tune_gc(threshold: int = DEFAULT_GC_THRESHOLD) -> None:
    """Run the young collection every `threshold` net container allocations (the older generations' ratios
    unchanged)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(threshold, middle, old)


def freeze_startup() -> int:
    """Collect once, then move every object alive now to the permanent generation the collector never scans;
    the number of objects moved."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
