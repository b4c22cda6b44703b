"""The object a run's own process is working on, noted before it begins: a run killed by the
object it was doing (a crash in a C decoder, the out-of-memory killer) leaves the note behind, so
the next run over the same records knows which object it died on, and how many runs did.

With ``--workers 1`` no worker process stands between an object and the run (with more, the
run's pool replaces a worker that dies: deid.run.pool), so an object that crashes the process
would stop every run over the input at the same place.  An object :data:`RUN_DEATHS` runs died on
is quarantined ``worker-crashed`` instead of being tried again, and the run goes on.

The note (``RECORDS/working``, mode 0600: a source's journal key, never its path) is rewritten in
place before each object (one ``pwrite``, not synced: a process that dies leaves its page-cache
writes behind; a power cut loses the count, which only means one more try) and removed when the
run ends, or stops on an error of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

NOTE = "working"
RUN_DEATHS = 2  # runs that may die on one object before it is quarantined
_RECORD = 128  # bytes: each note overwrites the last whole


class Working:
    """The note of one run's process (the module docstring)."""

    def __init__(self, records: Path) -> None:
        self.path = records / NOTE
        self.died_on = self._read()  # (journal key, runs that died on it), left by an earlier run
        self._fd: int | None = None

    def _read(self) -> tuple[str, int] | None:
        try:
            text = self.path.read_bytes().decode("ascii").strip()
        except (FileNotFoundError, UnicodeError):
            return None
        ref, _, deaths = text.partition(" ")
        return (ref, int(deaths)) if ref and deaths.isdigit() else None

    def deaths(self, ref: str) -> int:
        """How many runs died while working on the source with journal key ``ref``."""
        return self.died_on[1] if self.died_on is not None and self.died_on[0] == ref else 0

    def begin(self, ref: str) -> None:
        """Note that the source ``ref`` is being worked on (one more run on it, should this die)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        note = f"{ref} {self.deaths(ref) + 1}\n".encode("ascii")
        os.pwrite(self._fd, note.ljust(_RECORD, b" "), 0)

    def end(self) -> None:
        """Nothing is under way any more: the note goes."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.path.unlink(missing_ok=True)
