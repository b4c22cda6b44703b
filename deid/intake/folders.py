"""The folder walker of ``deid run``: every input entry judged alone, none able to stop the run.

Regular files are found (by resolved path, with the size and time the journal keys on).  Entries
that cannot be objects are skipped and counted by kind, never opened and never named:
links to nothing or in a loop, FIFOs, devices and sockets, folders that cannot be listed, and
links leaving the source folder (unless ``follow_links``: a link could otherwise bring any file of
the machine into the quarantine or the output).  Hidden files and folders are skipped, as ever.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deid.errors import UsageError

#: kinds of skipped entries -> what a person reads in the run's summary
SKIPPED_KINDS: dict[str, str] = {
    "broken-link": "links to nothing",
    "link-loop": "links in a loop",
    "link-outside-source": "links leaving the source folder (give --follow-links to follow them)",
    "special-file": "FIFOs, devices or sockets",
    "unreadable-folder": "folders or entries that could not be read",
}


@dataclass(frozen=True, order=True)
class SourceFile:
    """A regular input file: its resolved path, and the size and time it had when found."""

    path: Path
    size: int
    mtime_ns: int


@dataclass
class Found:
    """What a walk found: the files, in a stable order, and how many entries were skipped, by kind."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def discover(sources: list[Path], *, follow_links: bool = False) -> Found:
    """Every regular file under ``sources`` (files named on the command line are taken as given,
    links included: the user chose them)."""
    found: dict[Path, SourceFile] = {}
    skipped: Counter[str] = Counter()
    for source in sources:
        if not os.path.lexists(source):
            raise UsageError(f"{source}: no such file or folder")
        if source.is_dir():
            _walk(source.resolve(), found, skipped, follow_links)
        else:
            _entry(Path(os.path.abspath(source)), None, found, skipped, follow_links)
    return Found(sorted(found.values()), skipped)


def _walk(root: Path, found: dict[Path, SourceFile], skipped: Counter[str], follow_links: bool) -> None:
    seen = {_identity(root)}
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                names = sorted(entry.name for entry in listing if not entry.name.startswith("."))
        except OSError:
            skipped["unreadable-folder"] += 1
            continue
        for name in reversed(names):  # taken last in, first out: folders are walked in name order
            sub = _entry(folder / name, root, found, skipped, follow_links)
            if sub is None:
                continue
            try:
                identity = _identity(sub)
            except OSError:
                skipped["unreadable-folder"] += 1
                continue
            if identity not in seen:  # a followed link may lead back to a folder already walked
                seen.add(identity)
                folders.append(sub)


def _identity(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_dev, info.st_ino


def _entry(path: Path, root: Path | None, found: dict[Path, SourceFile], skipped: Counter[str],
           follow_links: bool) -> Path | None:
    """Judge one entry (``root`` None: named on the command line): a file goes into ``found``, a
    folder to walk is returned, anything else is counted in ``skipped``."""
    try:
        info = os.lstat(path)
        link = stat.S_ISLNK(info.st_mode)
        if link or root is None:
            try:
                target = path.resolve(strict=True)
            except FileNotFoundError:
                skipped["broken-link"] += 1
                return None
            except RuntimeError:  # a loop (Python before 3.13)
                skipped["link-loop"] += 1
                return None
            except OSError as exc:
                skipped["link-loop" if exc.errno == errno.ELOOP else "unreadable-folder"] += 1
                return None
            info = os.stat(target)
        else:
            target = path  # under a resolved folder, not a link: resolved already
        if link and root is not None:
            inside = target.is_relative_to(root)
            if not inside and not follow_links:
                skipped["link-outside-source"] += 1
                return None
            if inside and stat.S_ISDIR(info.st_mode):
                return None  # a folder of the source itself: walked under its own name
        if stat.S_ISDIR(info.st_mode):
            return target
    except OSError:
        skipped["unreadable-folder"] += 1
        return None
    if not stat.S_ISREG(info.st_mode):
        skipped["special-file"] += 1
        return None
    found[target] = SourceFile(target, info.st_size, info.st_mtime_ns)
    return None
