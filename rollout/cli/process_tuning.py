"""Tuning of the controller's process, done by its entrypoint (`rollout controller`), never by a controller
embedded in another program.

glibc's malloc: a block above the mmap threshold is mapped on its own and unmapped when freed, but glibc
raises the threshold to the size of every such block freed (up to 32 MiB). The analysis decodes Prometheus
answers of several MB in worker threads; once the threshold has risen, those blocks come from the threads'
arenas, whose free memory glibc returns only from an arena's top, and the RSS climbs with every tick and
stays. `hold_mmap_threshold` pins the threshold (what MALLOC_MMAP_THRESHOLD_ does); a no-op without glibc
(musl, macOS).

Python's cycle collector: decoding a wave of watch events and API answers allocates containers fast, so with
the default first threshold young collections run every few hundred microseconds and the full ones walk every
object the process holds (the informers' caches, the imported libraries). `tune_gc` raises the first
threshold (the others keep their defaults, so full collections keep their rhythm relative to young ones), and
`freeze_startup` moves what exists once the caches have synced out of the collector's sight; those objects are
still freed by reference counting. docs/benchmark.md has the measured effect of both.
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
