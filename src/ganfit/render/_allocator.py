"""Keep glibc's allocator from returning the CPU backend's large per-call buffers to the OS between calls.

A batched call allocates tens of MB per forward+backward (the texture gradient alone is ``B x Ht x Wt x C`` floats:
25 MB for 8 images with a 512x512 RGB texture). glibc serves such blocks with ``mmap`` or trims them off the heap
when they are freed, depending on the process's allocation history (its *dynamic* mmap threshold), so the next call
gets fresh pages and pays a page fault for each one it touches: measured ~9,000 faults and 2x the time of a
fwd+bwd at 256x256, batch 8, in one process of three, and none in the others. Fixing both thresholds at sizes above
those buffers makes every call reuse the heap's pages: the same workload then runs at the fast mode's speed in every
process. The memory stays with the process (its peak), which a renderer called thousands of times wants anyway.

This changes a process-wide setting, once, on the first CPU rasterization. It is skipped on non-glibc systems,
when the user has set glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``GLIBC_TUNABLES``, or
with ``GANFIT_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 256 << 20  # blocks below this come from the heap (its pages stay mapped)
TRIM_THRESHOLD_BYTES = 512 << 20  # free memory at the top of the heap kept mapped up to this size

_applied: bool | None = None  # None until the first call decides


def tune_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds, once per process; True when they are fixed by this module."""
    global _applied
    if _applied is None:
        _applied = _apply()
        logger.debug("glibc malloc thresholds %s", "fixed" if _applied else "left alone")
    return _applied


def allocator_tuned() -> bool | None:
    """Whether this process's thresholds were fixed (None: no CPU rasterization has decided yet)."""
    return _applied


def _apply() -> bool:
    if os.environ.get("GANFIT_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    if any(os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False  # the user chose the allocator's behaviour
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
