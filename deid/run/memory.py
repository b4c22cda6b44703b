"""How a run's processes hold memory: each object's buffers (its file's bytes, the released
bytes, ~0.5 MB each for a CT slice) are reused for the next object instead of being handed back
to the OS and faulted in again, and what lives as long as the run is left out of the cyclic
garbage collector's passes."""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# glibc mallopt(3) parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: buffers up to this size come from the heap, reused (larger ones are mapped and unmapped)
MMAP_THRESHOLD = 8 * 1024 * 1024
#: free heap kept for the next object rather than returned to the OS
TRIM_THRESHOLD = 64 * 1024 * 1024


def reuse_freed_buffers() -> bool:
    """Keep freed object-sized buffers in this process (and the processes it forks later) for
    reuse.  Left to itself, glibc may hand a freed 0.5 MB buffer back to the OS, and each object
    then faults its memory in again (a ``--workers 1`` run: ~210 page faults per CT slice, 0.3-0.4
    ms of system time).  Memory stays bounded: at most ``TRIM_THRESHOLD`` of free heap is kept.
    The setting stays with the process.  False where this is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # another C library (musl): its own allocator's policy
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """While inside: every object made before (modules, the profile, the standard's tables, the
    engine) is out of the collector's reach, so its passes do not walk them, and processes forked
    inside keep them so (their collectors do not touch, hence do not copy, the pages they
    inherit).  On leaving, they are this process's collector's again (a test process runs many
    runs)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
