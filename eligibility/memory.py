"""Hand memory the loader no longer needs back to the operating system.

Reading a file allocates far more than the typed cohort keeps (decoded Arrow columns,
text, temporary masks). The Arrow memory pool and glibc's malloc both keep freed
memory for reuse, so without this a loaded cohort holds its peak size for the life
of the process (measured: 3.3 GB resident for a 0.8 GB table, 0.8 GB after release).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import pyarrow as pa


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release() -> None:
    """Return freed memory of the Arrow pool and of malloc to the operating system."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
