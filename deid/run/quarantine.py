"""The quarantine as a run sees it: the names its entries give sources, its originals as an input
(``deid run --from-quarantine``), and the entries that leave it once their object is released."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path

from deid.errors import UsageError
from deid.intake.folders import Found, SourceFile
from deid.io.source import shown
from deid.outcome import Outcome, Quarantined, Written

REASON = "reason.json"  # in each quarantine entry


def quarantine_entries(quarantine: Path) -> list[Path]:
    """The entries of a quarantine folder (each a folder with a reason.json)."""
    return sorted(_entries(quarantine))


def is_quarantine(folder: Path) -> bool:
    """Whether ``folder`` holds a quarantine entry."""
    return any(_entries(folder))


def _entries(quarantine: Path) -> Iterator[Path]:
    if quarantine.is_dir():
        yield from (entry for entry in quarantine.iterdir()
                    if not entry.name.startswith(".") and (entry / REASON).is_file())


def source_names(sources: list[Path]) -> Callable[[Path], str]:
    """The name a quarantine entry gives a found file: its path relative to the SRC argument it
    was found under (its own name when SRC is the file, or a followed link led outside)."""
    roots = [source.resolve() for source in sources if source.is_dir()]

    def name(path: Path) -> str:
        for root in roots:
            if path.is_relative_to(root):
                return shown(path.relative_to(root))
        return shown(path.name)

    return name


def quarantined_originals(quarantine: Path) -> tuple[Found, Callable[[Path], str]]:
    """The originals kept in a quarantine (as found files), and the name each had in its source
    (reason.json's ``source``; else the original's own name).  An entry of a file that was not
    read (too-large) holds no original: it stays, and a run over its source tries it again."""
    files: list[SourceFile] = []
    known: dict[Path, str] = {}
    if not quarantine.is_dir():
        raise UsageError(f"--from-quarantine {quarantine}: no such folder")
    for entry in quarantine_entries(quarantine):
        try:
            reason = json.loads((entry / REASON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            reason = {}
        for original in sorted(entry.glob("original*")):
            info = original.stat()
            files.append(SourceFile(original, info.st_size, info.st_mtime_ns))
            source = reason.get("source") if isinstance(reason, dict) else None
            known[original] = source if isinstance(source, str) and source else original.name
    return Found(files), lambda path: known.get(path, path.name)


class QuarantineBook:
    """Which quarantine entries a run makes, and which leave the quarantine once the journal holds
    their object's release: an original released from the quarantine (``came_from``), or a source
    an earlier run quarantined that this run released; and which of the outputs in ``watched``
    (those an earlier profile made, which --reprocess removed) are released again.  Holds entry
    names and output paths only."""

    def __init__(self, quarantine: Path, done: Mapping[str, dict],
                 watched: Collection[str] = ()) -> None:
        self.quarantine = quarantine
        self.done = done  # the journal's entries of earlier runs, by ref
        self.watched = watched
        self.entry_of: dict[str, str] = {}  # ref -> the entry holding it (--from-quarantine)
        self.made: set[str] = set()  # entries this run quarantined into
        self.leaving: set[str] = set()  # entries whose object is released
        # the watched outputs this run released or found done (only those: a set of every output
        # grew ~270 bytes per object, the largest part of a run's memory growth)
        self.outputs: set[str] = set()

    def came_from(self, ref: str, original: Path) -> None:
        """The source ``ref`` is an original kept in a quarantine entry."""
        self.entry_of[ref] = original.parent.name

    def done_before(self, ref: str) -> None:
        """A source an earlier run finished (skipped by this one)."""
        entry = self.done[ref]
        if entry.get("status") == "written":
            self._released(entry.get("output") or "")
            if ref in self.entry_of:  # released, but the run ended before its entry left
                self.leaving.add(self.entry_of[ref])

    def note(self, ref: str, outcome: Outcome) -> None:
        """This run's outcome of the source ``ref``."""
        if not isinstance(outcome, Written):
            quarantine = outcome.entry if isinstance(outcome, Quarantined) else None
            if quarantine:
                self.made.add(quarantine)
                if self.entry_of.get(ref, quarantine) != quarantine:
                    self.leaving.add(self.entry_of[ref])  # an edited original: now in its new entry
            return
        self._released(outcome.released.output)
        before = self.done.get(ref) or {}
        if ref in self.entry_of:
            self.leaving.add(self.entry_of[ref])
        elif before.get("status") == "quarantined" and before.get("quarantine"):
            self.leaving.add(before["quarantine"])

    def _released(self, output: str) -> None:
        if output in self.watched:
            self.outputs.add(output)

    def settle(self) -> int:
        """Remove the entries whose object is released (not one this run quarantined into); how
        many."""
        gone = 0
        for name in sorted(self.leaving - self.made):
            entry = self.quarantine / name
            if entry.is_dir():
                shutil.rmtree(entry)
                gone += 1
        return gone
