"""Give back to the operating system the memory that allocators keep for reuse.

After a phase that built and dropped large temporary arrays, Arrow's memory pool
(mimalloc or jemalloc) and glibc's malloc keep the freed pages, so resident memory
stays at the phase's peak and the next phase stacks on top of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util


def release_unused_memory() -> None:
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        trim = ctypes.CDLL(name).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return
    trim(0)
