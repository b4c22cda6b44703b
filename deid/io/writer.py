"""Atomic writes: a temp file in the destination's file system, fsync, rename, directory fsync."""

from __future__ import annotations

import os
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(data: bytes, final: Path, *, mode: int = 0o644) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}.partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def encode(ds: Dataset) -> bytes:
    """The Part 10 bytes of a dataset, in its own transfer syntax (kept elements are copied raw)."""
    from pydicom.filebase import DicomBytesIO

    buffer = DicomBytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
