"""glibc malloc tuning for the controller process: large blocks go back to the system when freed.

An analysis tick decodes Prometheus answers of several MB in worker threads (rollout.analysis.prometheus), and
the informers decode list and watch answers in the event loop. glibc serves a block above its mmap threshold
(128 KiB at start) with its own mmap and unmaps it on free, but it raises that threshold to the size of every
such block freed (up to 32 MiB): from then on, blocks of a few MB come from the threads' malloc arenas, whose
free memory glibc returns only from the top of each arena. In bench/scale.py --analysis at 1,000 Services the
controller's RSS rose by 20-50 MB at each step of the rollouts and never came down (peak 301 MB); with the
threshold held at 256 KiB (what MALLOC_MMAP_THRESHOLD_=262144 does) the peak was 249 MB in the same benchmark.

`hold_mmap_threshold` is what the controller calls at start (ControllerConfig.malloc_mmap_threshold); it is a
no-op without glibc (musl, macOS), where the allocator has no such threshold to hold.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import structlog

log = structlog.get_logger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
DEFAULT_MMAP_THRESHOLD = 256 * 1024


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
