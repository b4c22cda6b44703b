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
from typing import Iterator

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

    def __iter__(self) -> Iterator[SourceFile]:
        return iter(self.files)

    def files_now(self) -> int:
        return len(self.files)

    def is_empty(self) -> bool:
        return not self.files


def discover(sources: list[Path], *, follow_links: bool = False) -> Found:
    """Every regular file under ``sources`` (files named on the command line are taken as given,
    links included: the user chose them), as one sorted list (see :class:`Discovery` for a walk
    that holds no list)."""
    walk = Discovery(sources, follow_links=follow_links)
    return Found(sorted(walk), walk.skipped)


class Discovery:
    """A lazy walk over ``sources``: iterating yields each regular file once, in path order, as it
    is found, so a run of any size holds no list of its files.  ``skipped`` counts the entries
    skipped so far, by kind (complete once the walk is done).

    Memory is that of the folders being walked (their sorted names) and of the files reached
    other than by the plain walk of a source folder (links, files named on the command line),
    which are remembered so that none is yielded twice; never one entry per file of a folder
    tree.  A missing source is a :class:`UsageError` when this is made, before any walk."""

    def __init__(self, sources: list[Path], *, follow_links: bool = False) -> None:
        for source in sources:
            if not os.path.lexists(source):
                raise UsageError(f"{source}: no such file or folder")
        self.sources = list(sources)
        self.follow_links = follow_links
        self.skipped: Counter[str] = Counter()
        self.count = 0  # files yielded so far
        self._roots: list[Path] = []  # the source folders walked (resolved)
        self._reached: set[Path] = set()  # files reached other than by a root's plain walk

    def __iter__(self) -> Iterator[SourceFile]:
        folders = sorted({source.resolve() for source in self.sources if source.is_dir()})
        # a folder inside another source folder is walked as part of it (unless hidden there)
        self._roots = [f for f in folders
                       if not any(self._plainly_under(f, r) for r in folders if r != f)]
        files = sorted(Path(os.path.abspath(s)) for s in self.sources if not s.is_dir())
        named = [(path, None) for path in files] + [(root, root) for root in self._roots]
        for path, root in sorted(named, key=lambda pair: pair[0]):
            if root is None:
                found = self._entry(path, None)
                if isinstance(found, SourceFile):
                    yield from self._once(found)
            else:
                yield from self._walk(root)

    def is_empty(self) -> bool:
        """Whether a walk finds no file now (a walk of its own, up to the first file)."""
        return next(iter(Discovery(self.sources, follow_links=self.follow_links)), None) is None

    def files_now(self) -> int:
        """How many files a walk finds now: a walk of its own (~10 µs a file), for a progress
        bar's total; this walk's ``skipped`` and ``count`` are left alone."""
        return sum(1 for _ in Discovery(self.sources, follow_links=self.follow_links))

    def _once(self, found: SourceFile) -> Iterator[SourceFile]:
        """``found`` unless a root's plain walk yields it, or it was yielded already."""
        if any(self._plainly_under(found.path, root) for root in self._roots):
            return
        if found.path in self._reached:
            return
        self._reached.add(found.path)
        self.count += 1
        yield found

    @staticmethod
    def _plainly_under(path: Path, root: Path) -> bool:
        """Whether the plain walk of ``root`` reaches ``path`` (resolved): under it, and no part of
        the way hidden."""
        if path == root or not path.is_relative_to(root):
            return False
        return not any(part.startswith(".") for part in path.relative_to(root).parts)

    def _walk(self, root: Path) -> Iterator[SourceFile]:
        """The files under ``root`` in path order: each folder's entries by name, a folder's files
        before the next name of its parent (as a sorted list of every path would hold them)."""
        seen = {_identity(root)}
        # (folder, its remaining names, reached by the plain walk of root)
        stack: list[tuple[Path, list[str], bool]] = []
        names = self._names(root)
        if names is not None:
            stack.append((root, names, True))
        while stack:
            folder, names, plain = stack[-1]
            if not names:
                stack.pop()
                continue
            path = folder / names.pop()
            found = self._entry(path, root)
            if isinstance(found, SourceFile):
                if plain and found.path == path:  # a plain file of the walk: yielded only here
                    self.count += 1
                    yield found
                else:  # a link's target, or a file in a linked folder: maybe reached otherwise
                    yield from self._once(found)
                continue
            if found is None:
                continue
            try:
                identity = _identity(found)
            except OSError:
                self.skipped["unreadable-folder"] += 1
                continue
            if identity in seen:  # a followed link may lead back to a folder already walked
                continue
            seen.add(identity)
            sub = self._names(found)
            if sub is not None:
                stack.append((found, sub, plain and found == path))

    def _names(self, folder: Path) -> list[str] | None:
        """The folder's visible entry names, last first (popped from the end), or None."""
        try:
            with os.scandir(folder) as listing:
                return sorted((entry.name for entry in listing if not entry.name.startswith(".")),
                              reverse=True)
        except OSError:
            self.skipped["unreadable-folder"] += 1
            return None

    def _entry(self, path: Path, root: Path | None) -> SourceFile | Path | None:
        """Judge one entry (``root`` None: named on the command line): a file is returned as a
        :class:`SourceFile`, a folder to walk as its path; anything else is counted in
        ``skipped``."""
        skipped = self.skipped
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
                if not inside and not self.follow_links:
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
        return SourceFile(target, info.st_size, info.st_mtime_ns)


def _identity(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_dev, info.st_ino
