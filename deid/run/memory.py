"""How a run's processes hold memory: each object's buffers (its file's bytes, the released
bytes, ~0.5 MB each for a CT slice) are reused for the next object instead of being handed back
to the OS and faulted in again, and what lives as long as the run is left out of the cyclic
garbage collector's passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from deid import allocator


def reuse_freed_buffers() -> bool:
    """Keep freed object-sized buffers in this process (and the processes it starts later) for
    reuse (:mod:`deid.allocator`; the ``deid`` command sets it at start, a run called from Python
    here).  Left to itself, glibc may hand a freed 0.5 MB buffer back to the OS, and each object
    then faults its memory in again (a ``--workers 1`` run: ~210 page faults per CT slice, 0.3-0.4
    ms of system time).  False where this is not glibc."""
    return allocator.tune()


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
