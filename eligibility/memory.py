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


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: VmHWM of /proc/self/status on Linux.

    Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux carries a parent's high-water mark over
    fork and exec into the child's ru_maxrss, so a fresh child of a 3 GB benchmark driver
    reports 3 GB whatever it used itself (measured: a 10 MB child of a 2 GB parent gave 2,059)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # other systems (kB on Linux, bytes on macOS)

