"""The client's half of a cluster run: each staged object, in input order, released as a local run
releases it.

Workers stage written objects (deid.cluster.worker).  Here, in the order of the input (the order
of a local ``--workers 1`` run), each is checked against what is already released (the file at its
place, then the released index's claim on its SOP Instance UID, as the pipeline checks) and renamed
into place.  When other content holds the place or the UID, the staged file is dropped and the file
is done again here by a local pipeline with the index, which quarantines it ``duplicate-instance``
exactly as a local run does: that is rare (one UID with two contents), so the client's usual work
per object is one claim and one rename.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from deid.cluster.worker import Done
from deid.io.writer import RUN_TEMP
from deid.outcome import Outcome, Written
from deid.pipeline import Pipeline, write_released
from deid.released import ReleasedIndex
from deid.sidecar import SIDECAR_FOLDER


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
        if not self._other_content(target, outcome, done.sha256):
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

    def _other_content(self, target: Path, outcome: Written, sha256: str) -> bool:
        """Whether other content is already released at ``target`` or under the object's SOP
        Instance UID (which is otherwise claimed for this content), as the pipeline decides."""
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
            return True
        facts = outcome.released
        if facts.output.startswith(f"{SIDECAR_FOLDER}/"):
            return False  # side-cars have no UID of their own
        return not self.released.claim(facts.sop_uid, sha256, facts.output)

    def _again(self, source: Path, name: str) -> Outcome:
        if self._local is None:
            self._local = self._make_local()
        # synced with its journal batch
        return write_released(self._local.deidentify_file(source, name), self.out, durable=False)
