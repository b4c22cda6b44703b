"""The folders of a run, checked before it starts and held while it writes: none inside another
or an input, one run at a time in each, and a full or read-only one named with what to do."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deid.errors import UsageError
from deid.io.writer import FolderLock, FolderLockedError, set_temp_owner
from deid.run.paths import RunPaths, inside
from deid.run.quarantine import is_quarantine

#: errors of the machine, not of deid or of an object: disk full, quota, read-only, permissions
_ENVIRONMENT = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "read-only",
                errno.EACCES: "not writable", errno.EPERM: "not writable"}


class FolderNotWritable(UsageError):
    """The output, quarantine or records folder is full, read-only or not ours to write (exit 2);
    the message says which and what to do.  Running the same command again completes the job."""


def check_paths(sources: list[Path], paths: RunPaths) -> None:
    """Refuse (:class:`UsageError`, exit 2, saying what to do) folders that would mix an input
    with the output, quarantine or records, either way round, or a folder that is a file."""
    folders = paths.named()
    for _name, flag, folder in folders:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{flag} {folder} is a file, not a folder: give a new folder "
                             "(deid makes it) or one an earlier deid run made")
    for name, _flag, folder in folders:
        for other, other_flag, inner in folders:
            if name != other and inside(inner, folder):
                raise UsageError(f"the {other} folder {inner} is inside the {name} folder "
                                 f"{folder}: give folders side by side (the defaults are "
                                 "OUT-quarantine and OUT-records beside OUT), e.g. another "
                                 f"{other_flag}")
    for source in sources:
        resolved = source.resolve()
        for name, flag, folder in folders:  # (a link to the input inside the output counts too)
            if inside(resolved, folder) or inside(Path(os.path.abspath(source)), folder):
                hint = ("the output holds only what may be released" if name == "output" else
                        "deid writes and removes files there")
                raise UsageError(f"{source}: this input is inside the {name} folder {folder} "
                                 f"({hint}); move the input out of it, or give another {flag}" +
                                 ("; to release the quarantine again, give --from-quarantine "
                                  f"{folder} instead of SRC" if name == "quarantine" else ""))
            if inside(folder, resolved):
                raise UsageError(f"{source}: the {name} folder {folder} is inside this input, so "
                                 f"the run would read what it writes; give {flag} outside every "
                                 "input")
        if is_quarantine(resolved):
            raise UsageError(f"{source}: this input is a deid quarantine (its entries hold "
                             "originals and reason.json): to release it again, give "
                             f"--from-quarantine {source} instead of SRC")


@contextmanager
def locked(paths: RunPaths) -> Iterator[None]:
    """Hold the records' lock and the output's lock (one run per records folder, one per output)."""
    with open(paths.records / "run.lock", "w") as lock:
        os.fchmod(lock.fileno(), 0o600)  # empty, yet owner-only like every file in the records
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{paths.records}: another deid run is using these records; wait for "
                             "it to finish") from None
        try:
            out_lock = FolderLock(paths.out)
        except FolderLockedError:
            raise UsageError(f"{paths.out}: another deid run is writing into this output folder "
                             "(whatever its records folder); wait for it to finish, or give "
                             "another --out") from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise
            raise UsageError(f"{paths.out}: the output's file system cannot lock files (flock), "
                             "so deid cannot keep a second run out; give an --out on a local "
                             "disk") from None
        try:
            yield
        finally:
            set_temp_owner("")
            out_lock.release()


@contextmanager
def told_what_to_do(paths: RunPaths) -> Iterator[None]:
    """Raise a full, read-only or forbidden folder met inside as :class:`FolderNotWritable`."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT:
            raise
        raise FolderNotWritable(_advice(exc, paths)) from None


def _advice(exc: OSError, paths: RunPaths) -> str:
    """What went wrong with which folder, and what to do: never a source path or a value."""
    problem = _ENVIRONMENT[exc.errno or 0]
    folders = paths.named()
    named = [f for f in folders if exc.filename and inside(Path(os.fsdecode(exc.filename)), f[2])]
    if not named:  # a write on an open file names none: find the folder from its file system
        named = [f for f in folders if _looks(problem, f[2])] or folders
    which = " or ".join(f"the {name} folder {folder}" for name, _flag, folder in named)
    flags = " or ".join(flag for _name, flag, _folder in named)
    fix = {"full": "free space on its disk", "read-only": "mount it read-write",
           "not writable": "give this user write permission on it"}[problem]
    cause = {"full": "the disk is full (or the quota is used up)", "read-only": "it is read-only",
             "not writable": "this user may not write there"}[problem]
    return (f"cannot write into {which}: {cause}. {fix[0].upper() + fix[1:]} (or give another "
            f"{flags}), then run the same command again: it keeps what is done and completes the "
            "rest")


def _looks(problem: str, folder: Path) -> bool:
    """Whether ``folder`` (or the nearest existing folder above it) shows ``problem``."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return False
    if problem == "full":
        return info.f_bavail * info.f_frsize < (1 << 20)
    if problem == "read-only":
        return bool(info.f_flag & os.ST_RDONLY)
    return not os.access(folder, os.W_OK)
