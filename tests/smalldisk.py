"""A real, small file system for tests of a full disk: a tmpfs mounted under the test's folder,
filled with a ballast file and emptied again.

Mounting needs root (or CAP_SYS_ADMIN): without it the test skips on a developer's machine and
fails in CI (``CI=true``), as a missing peer tool does.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BALLAST = "ballast"


@contextmanager
def small_disk(folder: Path, size_mb: int = 8, mode: str = "0700") -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MiB mounted at ``folder`` (created), unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode={mode}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        message = f"cannot mount a small tmpfs for a full-disk test (needs root): {mounted.stderr}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield folder
    finally:
        # lazy: a process of the test still holding a file there cannot keep the mount
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the file system says it is full (ENOSPC); returns its path."""
    path = disk / BALLAST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1024 * 1024, 4096, 1):  # big blocks, then what is left
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return path


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def remount(disk: Path, options: str) -> None:
    """Change a mounted small disk: e.g. ``size=64m`` (space freed), ``ro``, ``rw``."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(disk)], check=True, capture_output=True,
                   timeout=60)
