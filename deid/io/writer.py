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


def write_bytes_atomic(data: bytes, final: Path, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``final`` so that it is either absent or whole.  With ``durable`` it is on disk when this
    returns; without, the caller makes a batch durable with ``os.sync()`` before recording it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}.partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(final.parent)
