"""A run's process memory settings: what lives as long as the run is frozen only while it runs,
and object-sized buffers are kept for reuse (glibc), so each object does not fault its memory in
again."""

from __future__ import annotations

import gc
import multiprocessing
import os
import platform

import pytest

from deid.run.memory import long_lived_frozen, reuse_freed_buffers


def test_long_lived_objects_are_frozen_only_inside() -> None:
    kept = [object() for _ in range(10)]
    before = gc.get_freeze_count()
    with long_lived_frozen():
        assert gc.get_freeze_count() >= before + len(kept)
    assert gc.get_freeze_count() == 0  # a test process runs many runs: nothing stays frozen
    assert kept


def test_a_failure_inside_unfreezes() -> None:
    with pytest.raises(RuntimeError), long_lived_frozen():
        raise RuntimeError("stopped")
    assert gc.get_freeze_count() == 0


def _reuse_in_child(conn) -> None:  # in a child: the allocator settings are per process
    applied = reuse_freed_buffers()
    data = bytes(8 * 1024 * 1024 - 4096)  # under the threshold: from the heap, kept when freed
    del data
    conn.send(applied)
    conn.close()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" and os.environ.get("CI") != "true",
                    reason="glibc's allocator settings (CI=true: fails)")
def test_glibc_keeps_object_sized_buffers() -> None:
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    process = context.Process(target=_reuse_in_child, args=(child,))
    process.start()
    assert parent.recv() is True
    process.join()
    assert process.exitcode == 0
