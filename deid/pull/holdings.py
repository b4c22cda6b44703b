"""What the pull already has of an instance, looked up where it is, never taken on trust:

- released: every destination has it, by the audit trail's ``forwarded`` lines (written and synced
  before the spool lets the original go) under its released SOP Instance UID; for ``--out`` the
  released file must also be in the output folder;
- quarantined: its original is in a quarantine entry;
- pending: its original waits in the spool (queued, in progress, or waiting for a destination).

Anything else is missing and is fetched.  Looked at in the order spool, quarantine, audit trail:
an object that leaves the spool while we look has its record already written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydicom import dcmread

from deid.audit.trail import AUDIT_DIR
from deid.engine.uids import UidRemapper
from deid.settings import ServeSettings
from deid.spool import waiting_originals

RELEASED, QUARANTINED, PENDING, MISSING = "released", "quarantined", "pending", "missing"


def _sop_uid(path: Path, offset: int = 0) -> str:
    """The SOP Instance UID of a stored original (at ``offset`` in its file; '' when it cannot
    be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            ds = dcmread(handle, stop_before_pixels=True, specific_tags=["SOPInstanceUID"],
                         force=True)
        return str(ds.get("SOPInstanceUID", "") or "")
    except Exception:  # noqa: BLE001  (an unreadable original is not one we can name)
        return ""


class Holdings:
    """The pull's view of the data folder (and output folder), refreshed on demand."""

    def __init__(self, settings: ServeSettings, destinations: list[str], remapper: UidRemapper,
                 out: Path | None = None) -> None:
        self.spool = settings.spool
        self.quarantine = settings.quarantine
        self.audit = settings.records / AUDIT_DIR
        self.destinations = list(destinations)
        self.remap = remapper.remap
        self.out = out
        self._read: dict[str, int] = {}  # audit file -> bytes read (whole lines)
        self._delivered: dict[str, set[str]] = {}  # released SOP UID -> destinations that have it
        self._outputs: dict[str, str] = {}  # released SOP UID -> its output path (folder)
        self._names: dict[str, str] = {}  # spool object or quarantine file -> its SOP UID (fixed)
        self.pending: set[str] = set()
        self.quarantined: set[str] = set()

    def refresh(self) -> None:
        self.pending = self._waiting()
        self.quarantined = self._originals(self.quarantine, "*/original*")
        self._follow_audit()

    def state(self, sop_uid: str) -> str:
        """released, quarantined, pending or missing, for an original SOP Instance UID."""
        released = self.remap(sop_uid)
        if all(name in self._delivered.get(released, ()) for name in self.destinations) and (
                self.out is None or (self.out / self._outputs.get(released, "\0")).is_file()):
            return RELEASED
        if sop_uid in self.quarantined:
            return QUARANTINED
        if sop_uid in self.pending:
            return PENDING
        return MISSING

    def _waiting(self) -> set[str]:
        """The SOP UIDs of the originals waiting in the spool."""
        found = set()
        for key, path, offset in waiting_originals(self.spool):
            if key not in self._names:
                self._names[key] = _sop_uid(path, offset)
            found.add(self._names[key])
        found.discard("")
        return found

    def _originals(self, folder: Path, pattern: str) -> set[str]:
        found = set()
        for path in folder.glob(pattern) if folder.is_dir() else ():
            key = str(path)
            if key not in self._names:
                self._names[key] = _sop_uid(path)
            found.add(self._names[key])
        found.discard("")
        return found

    def _follow_audit(self) -> None:
        """Read the audit lines written since the last look (a cut last line waits)."""
        for path in sorted(self.audit.glob("*.jsonl")) if self.audit.is_dir() else ():
            start = self._read.get(str(path), 0)
            try:
                if os.path.getsize(path) <= start:
                    continue
                with open(path, "rb") as handle:
                    handle.seek(start)
                    chunk = handle.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1
            self._read[str(path)] = start + end
            for line in chunk[:end].splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: its object is retried and recorded again
                if record.get("outcome") != "forwarded" or not record.get("sop_uid"):
                    continue
                sop = str(record["sop_uid"])
                self._delivered.setdefault(sop, set()).add(str(record.get("destination")))
                if record.get("output"):
                    self._outputs[sop] = str(record["output"])
