"""glibc's allocator kept from handing each object's buffers back to the kernel.

Every object deid handles makes a few buffers of its own size (the file read, the released bytes,
a copy through a pipe): half a megabyte for a CT slice.  glibc serves such blocks with fresh
``mmap`` pages (or trims the heap when they are freed), so each one faults in and is zeroed again
by the kernel: ~150 page faults and ~0.2 ms of system time per CT slice in ``deid run``
(``/usr/bin/time``: 170,000 minor faults over 1,000 slices, 20,000 with this).  Raising the
thresholds keeps freed blocks in the heap for the next object.  Blocks above 16 MiB (a large
multi-frame object) are still mapped and unmapped on their own, and at most 64 MiB of free heap
is kept, the same for any number of objects (memory stays flat in corpus size).

:func:`tune` applies it to this process (``mallopt``) and, through the environment glibc reads at
start, to the worker processes it starts.  Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 16 * 1024 * 1024  # larger blocks: mapped on their own, as before
TRIM_THRESHOLD = 64 * 1024 * 1024  # free heap kept at most
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
                "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


def tune() -> bool:
    """Set the thresholds for this process and its children; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:  # (by name: ctypes.util.find_library starts /sbin/ldconfig, ~10 ms of every start)
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # another C library (musl): its own allocator's policy
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if not mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) or \
            not mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD):
        return False
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)  # a person's own setting wins
    return True
