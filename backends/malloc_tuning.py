"""Keep freed NumPy buffers in the process heap instead of handing them back to the kernel.

glibc's malloc serves large requests with fresh mmap pages, and returns the top of the heap
to the kernel as soon as more than 128 KiB of it is free. A training step allocates and frees
the same few megabyte-sized arrays over and over, so every one of them comes back as fresh
pages that the kernel zeroes on first touch: on this project's CPU machine a 64-image 3x3
convolution took 3.2 ms instead of 0.4 ms, nearly all of it page faults. Two mallopt settings
fix it: a 64 MiB top pad (the heap keeps up to that much free memory at its top) and a 32 MiB
mmap threshold (larger requests still get their own mapping). The process then holds up to
64 MiB of freed memory for reuse.

Applied once per process, when the first NumPy() backend is built, on glibc only. Set
STRATA_MALLOC_TUNING=0 to leave malloc alone.
"""
from __future__ import annotations

import ctypes
import os
import sys

_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
TOP_PAD = 64 << 20
MMAP_THRESHOLD = 32 << 20

_done = False
applied = False   # whether the settings are in effect (for diagnostics and tests)


def tune() -> bool:
    """Apply the settings once; returns whether they are in effect."""
    global _done, applied
    if _done:
        return applied
    _done = True
    if os.environ.get("STRATA_MALLOC_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl has no mallopt semantics to tune
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TOP_PAD, TOP_PAD))
    return applied
