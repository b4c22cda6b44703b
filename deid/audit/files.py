"""Append-only, owner-only record files: one ``os.write`` per line (O_APPEND), fsync on demand."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from deid.io.writer import fsync_dir


def utc_now() -> str:
    """The time as audit lines write it: '2026-11-30T16:30:00.123456Z'."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_stamp() -> str:
    """A sortable time for file names: '20261130T163000Z'."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class AppendFile:
    """A file opened for appending whole lines (mode 0600); lines written by this process reach the
    OS at once, so a crash of the process loses none; ``sync`` makes them durable on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        created = not path.exists()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(self._fd, 0o600)
        self._lock = threading.Lock()
        self._dirty = created
        if not created and path.stat().st_size:
            with open(path, "rb") as handle:  # a line cut by a crash is ended, or the next is lost
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    self.write(b"\n")
        if created:
            fsync_dir(path.parent)

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path.name} is closed")
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            self._dirty = True

    def sync(self) -> None:
        with self._lock:  # writers wait only for the flag, not for the disk
            fd, dirty, self._dirty = self._fd, self._dirty, False
        if fd is not None and dirty:
            os.fsync(fd)

    def close(self) -> None:
        self.sync()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
