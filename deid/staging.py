"""Released objects staged by the processes that make them, and placed in input order by one.

Whoever de-identifies an object (a forked worker of ``deid run --workers N``, a Dask worker of
``deid run --cluster``) releases nothing itself: the object's bytes go to a *staged* file beside
its place in the output (a hidden run temp name, :func:`staged_name`), and the run's own process,
in the order of the input, checks what is already released (the file at its place, then the
released index's claim on its SOP Instance UID, as the pipeline checks) and renames it into place
(:class:`Placer`).  So which of two objects with one SOP Instance UID but other content is
released is decided by input order, whatever the order in which workers finish: the output is
the one a ``--workers 1`` run makes.  When other content holds the place or the UID, the staged
file is dropped and the object is done again by a pipeline with the index, which quarantines it
``duplicate-instance`` exactly as a one-process run does: that is rare, so the placing process's
usual work per object is one claim and one rename.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from deid.digest import content_digest
from deid.io.writer import RUN_TEMP, write_bytes_atomic
from deid.outcome import Outcome, Written
from deid.pipeline import Pipeline, write_released
from deid.released import ReleasedIndex
from deid.sidecar import SIDECAR_FOLDER


@dataclass
class Done:
    """One file's outcome, without its bytes; ``staged``: where they wait (relative to the output)."""

    ref: str
    path: str
    name: str  # the source's name in a quarantine entry (relative to its SRC)
    outcome: Outcome
    digest: str = ""  # of the released bytes (deid.digest)
    staged: str = ""


def staged_name(output: str, ref: str, run_id: str) -> str:
    """Where a written object's bytes wait to be placed, relative to the output: hidden, beside
    its place, named by its source's journal key and the run (a run temp name, which every later
    run removes if this one is killed; see deid.io.writer.RUN_TEMP)."""
    place = Path(output)
    return str(place.parent / f".{place.name}.{ref[:16]}.{run_id}-0.partial")


def stage(outcome: Outcome, out: Path, run_id: str, ref: str, path: str, name: str) -> Done:
    """A source's outcome (from a pipeline made without the released index: it claims nothing),
    its released bytes staged under ``out``; an OSError is the output's disk."""
    done = Done(ref, path, name, outcome)
    if isinstance(outcome, Written) and outcome.data is not None:
        done.digest = content_digest(outcome.data)
        done.staged = staged_name(outcome.released.output, ref, run_id)
        write_bytes_atomic(outcome.data, out / done.staged, durable=False)  # synced with its batch
        done.outcome = outcome.without_data()
    return done


class Placer:
    """Releases staged objects into ``out`` in the order it is given them."""

    def __init__(self, out: Path, released: ReleasedIndex, local: Callable[[], Pipeline]) -> None:
        self.out = out
        self.released = released
        self._make_local = local
        self._local: Pipeline | None = None
        self._touched: set[Path] = set()  # folders where objects were staged
        self._dropped: set[Path] = set()  # folders a dropped staged file may leave empty
        self.done_again = 0  # objects done again here (other content under their place or UID)

    def place(self, done: Done) -> Outcome:
        """The object's outcome once released (or quarantined, as a local run would)."""
        outcome = done.outcome
        if not done.staged or not isinstance(outcome, Written):
            return outcome  # quarantined by the worker
        staged, target = self.out / done.staged, self.out / outcome.released.output
        self._touched.add(staged.parent)
        if not self._other_content(target, outcome, done.digest, staged):
            try:
                os.replace(staged, target)
                return outcome
            except FileNotFoundError:
                pass  # not where the worker staged it: done again here, to the same bytes
        self.drop([done])
        self.done_again += 1
        return self._again(Path(done.path), done.name)

    def drop(self, dones: Iterable[Done]) -> None:
        """Remove the staged files of objects that will not be placed."""
        for done in dones:
            if done.staged:
                (self.out / done.staged).unlink(missing_ok=True)
                self._dropped.add((self.out / done.staged).parent)

    def tidy(self) -> None:
        """Remove what lost workers left (run temp files) in the folders this run staged in, and the
        folders dropped staged files left empty."""
        for folder in self._touched:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if RUN_TEMP.match(name):
                    (folder / name).unlink(missing_ok=True)
        for folder in sorted(self._dropped, key=lambda p: len(p.parts), reverse=True):
            while folder != self.out and self.out in folder.parents:
                try:
                    folder.rmdir()
                except OSError:  # not empty (or gone): the folders above are not empty either
                    break
                folder = folder.parent

    def _other_content(self, target: Path, outcome: Written, digest: str, staged: Path) -> bool:
        """Whether other content is already released at ``target`` or under the object's SOP
        Instance UID (which is otherwise claimed for this content), as the pipeline decides;
        ``staged`` holds this content."""
        if target.is_file() and content_digest(target.read_bytes()) != digest:
            return True
        facts = outcome.released
        if facts.output.startswith(f"{SIDECAR_FOLDER}/"):
            return False  # side-cars have no UID of their own
        return not self.released.claim(facts.sop_uid, digest, facts.output, staged.read_bytes)

    def _again(self, source: Path, name: str) -> Outcome:
        if self._local is None:
            self._local = self._make_local()
        # synced with its journal batch
        return write_released(self._local.deidentify_file(source, name), self.out, durable=False)
