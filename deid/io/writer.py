"""Atomic writes: a temp file in the destination's file system, fsync, rename, directory fsync."""

from __future__ import annotations

import os
from pathlib import Path



def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _start_writeback_fn():
    """libc sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE): start writing a file to disk without
    waiting, so the batch sync that follows has little left to do (Linux; a no-op elsewhere)."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
        fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
        return lambda fd: fn(fd, 0, 0, 2)
    except (OSError, AttributeError):
        return lambda fd: 0


_start_writeback = _start_writeback_fn()


def write_bytes_atomic(data: bytes, final: Path, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``final`` so that it is either absent or whole.  With ``durable`` it is on disk when this
    returns; without, the caller makes a batch durable with ``os.sync()`` before recording it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}.partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
            else:
                _start_writeback(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(final.parent)
