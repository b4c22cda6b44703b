"""Atomic writes: a temp file in the destination's file system, fsync, rename, directory fsync.

A temp file is named ``.<name>.<owner>-<pid>.partial``: ``owner`` is the run id of a ``deid run``
(see :func:`set_temp_owner`), so a run's leftovers are known as a run's; other writers (the node)
name them by pid only.  The output folder's lock (:class:`FolderLock`) keeps a second run out.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path

#: the lock file a ``deid run`` holds in its output folder (hidden; ``deid verify`` skips it)
OUTPUT_LOCK = ".deid-run.lock"
#: a temp file a ``deid run`` left (``.<name>.<run id>-<pid>.partial``)
RUN_TEMP = re.compile(r"^\..+\.[0-9a-f]{12}-[0-9]+\.partial$")

_temp_owner = ""  # the run id of the deid run this process writes for ("" outside a run)


def set_temp_owner(run_id: str) -> None:
    """Name this process's temp files by ``run_id`` (a run and its worker processes); "" resets."""
    global _temp_owner
    _temp_owner = run_id


def temp_path(final: Path) -> Path:
    """Where ``final`` is written before its rename: hidden, beside it, named by run and pid."""
    owner = f"{_temp_owner}-" if _temp_owner else ""
    return final.parent / f".{final.name}.{owner}{os.getpid()}.partial"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc():  # noqa: ANN202
    """The C library, loaded by name (``ctypes.util.find_library`` starts ``/sbin/ldconfig``:
    ~10 ms of every start); OSError where there is no glibc."""
    import ctypes

    return ctypes.CDLL("libc.so.6", use_errno=True)


def _start_writeback_fn():
    """libc sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE): start writing a file to disk without
    waiting, so the batch sync that follows has little left to do (Linux; a no-op elsewhere)."""
    try:
        import ctypes

        fn = _libc().sync_file_range
        fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
        return lambda fd: fn(fd, 0, 0, 2)
    except (OSError, AttributeError):
        return lambda fd: 0


_start_writeback = _start_writeback_fn()


def _syncfs_fn():
    """libc syncfs(fd): write back one file system's dirty pages (Linux), or None."""
    try:
        import ctypes

        fn = _libc().syncfs
        fn.argtypes = (ctypes.c_int,)
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


_syncfs = _syncfs_fn()


def sync_file_systems(folders: list[Path]) -> None:
    """Make what was written under ``folders`` durable: one ``syncfs`` per file system they are on
    (where the C library has it; else ``os.sync``).  ``os.sync`` writes back every file system's
    dirty pages, other programs' too: on a busy server a batch waited for them (and paid their
    write-back in system time)."""
    if _syncfs is None:
        os.sync()
        return
    seen: set[int] = set()
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            device = os.fstat(fd).st_dev
            if device in seen:
                continue
            seen.add(device)
            if _syncfs(fd) != 0:
                error = _errno()
                raise OSError(error, os.strerror(error), str(folder))
        finally:
            os.close(fd)


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC  # a temp file, written whole


def write_bytes_atomic(data: bytes, final: Path, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``final`` so that it is either absent or whole.  With ``durable`` it is on disk when this
    returns; without, the caller makes a batch durable (:func:`sync_file_systems`) before recording it."""
    tmp = temp_path(final)
    try:
        fd = os.open(tmp, _CREATE, mode)
    except (FileNotFoundError, NotADirectoryError):  # its folder is not there yet (or not a folder)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, _CREATE, mode)
    try:
        try:
            view = memoryview(data)
            while view:  # one write but for the largest objects (Linux writes < 2 GiB at once)
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
            else:
                _start_writeback(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # a write or flush names no file: this one (its folder is the full one)
            exc.filename = str(final)
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(final.parent)


def remove_run_temps(folder: Path) -> int:
    """Delete the temp files killed runs left under ``folder``; returns how many.  Call it only while
    holding the folder's :class:`FolderLock`: then no other run is writing there, and every run temp
    file (and a pid-named one from before temps were named by run) is a dead writer's."""
    removed = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if RUN_TEMP.match(name) or re.match(r"^\..+\.[0-9]+\.partial$", name):
                Path(root, name).unlink(missing_ok=True)
                removed += 1
    return removed


class FolderLockedError(Exception):
    """Another process holds the folder's lock."""


class FolderLock:
    """An exclusive ``flock`` on ``folder/name``, held until :meth:`release` (or the process ends).

    The file is removed on release, so a finished run leaves nothing in its output; a run killed
    with the lock leaves the file, and the next run takes it over."""

    def __init__(self, folder: Path, name: str = OUTPUT_LOCK) -> None:
        self.path = folder / name
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise FolderLockedError(str(self.path)) from None
                raise
            try:  # a holder may have removed the file between our open and our lock: lock the new one
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd: int | None = fd
                return
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full folder: the file stays, the next run takes it over
        os.close(self._fd)
        self._fd = None
