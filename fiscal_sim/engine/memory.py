"""Allocator tuning for the engine's large, short-lived numpy buffers.

glibc returns every freed buffer above its mmap threshold to the OS, so the
next chunk's buffer of the same size is page-faulted in again; on sandboxed
or virtualised kernels those faults cost more than the arithmetic. Raising
the thresholds keeps freed memory in the process for reuse. No-op elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory(threshold: int = 256 * 2**20) -> bool:
    """Ask glibc to keep freed blocks up to ``threshold`` bytes; True when applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 * threshold))
    except (OSError, AttributeError):
        return False
