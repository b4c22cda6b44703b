"""The run's journal: which sources are done (written or quarantined), so a second run skips them.

Entries are keyed by an HMAC of the source path, size and mtime (:func:`source_ref`): no source
path is stored.  Each entry records the profile and key it was made with."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from deid.audit.trail import AuditTrail
from deid.intake.folders import SourceFile
from deid.io.writer import sync_file_systems
from deid.keys import SecretKey
from deid.outcome import Outcome, Quarantined, Released, Skipped, Written
from deid.profile.model import Profile
from deid.run.paths import RunPaths

JOURNAL = "journal.jsonl"
RETRIED = frozenset({"too-large"})  # quarantined for a limit of the run: tried again by every run
RELEASED_FACTS = ("output", "sop_class_uid", "modality", "patient_id", "study_uid", "series_uid",
                  "sop_uid")  # what a written entry keeps of its release, so a skip can be audited


def source_ref(key: SecretKey, source: SourceFile) -> str:
    """The journal key of a source: an HMAC of its path (as bytes, so any file name works; the same
    as the UTF-8 text of a UTF-8 name), size and time, so no path is stored."""
    data = os.fsencode(source.path) + f"\x00{source.size}\x00{source.mtime_ns}".encode()
    return key.hexdigest("source", data)[:32]


def journal_stamp(profile: Profile, key: SecretKey) -> dict[str, str]:
    """What each journal entry records of the profile (and deny-list) and key it was made with."""
    stamp = {"profile_sha256": profile.sha256, "key_fingerprint": key.fingerprint}
    if profile.deny_list_sha256:
        stamp["deny_list_sha256"] = profile.deny_list_sha256
    return stamp


class Journal:
    """Append-only record of finished sources; read back to skip them.  The run's
    :class:`~deid.settlement.Ledger`: an outcome is recorded in the audit trail (when given),
    synced with its batch's outputs (one ``syncfs`` per file system), then journalled (released):
    an object the journal calls done has its output and its audit line on disk.  Journal lines reach the disk
    with the next batch's sync, or at :meth:`close`; one lost to a crash is done again."""

    def __init__(self, records: Path, trail: AuditTrail | None = None,
                 stamp: Mapping[str, str] | None = None, synced: Sequence[Path] = ()) -> None:
        self.path = records / JOURNAL
        self.trail = trail
        # the folders whose file systems a batch's sync writes back (the output, where workers
        # write the released files, and the records, where they claim UIDs): the records at least
        self.synced = [*synced, records] if records not in synced else list(synced)
        # added to each entry: the profile and key it was made with (see journal_stamp)
        self.stamp: dict[str, str] = dict(stamp or {})
        self.done: dict[str, dict] = {}
        cut = False
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    cut = not line.endswith("\n")
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut by a crash
                    self.done[entry["ref"]] = entry
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open until close()
        if cut:  # end the cut line, or the first new entry would be glued to it and lost
            self._handle.write("\n")
        os.chmod(self.path, 0o600)

    def is_done(self, ref: str, paths: RunPaths) -> bool:
        """Whether an earlier run finished this source with this profile, its output or its
        quarantine entry still there (one quarantined under a limit of the run is tried again)."""
        entry = self.done.get(ref)
        if entry is None:
            return False
        if made_with_another_profile(entry, self.stamp):
            return False  # released again (deid run --reprocess)
        if entry["status"] == "written":
            return (paths.out / entry["output"]).is_file()
        if not entry.get("quarantine") or entry.get("reason") in RETRIED:
            return False  # quarantined without an entry (unreadable), or under a changeable limit
        return (paths.quarantine / entry["quarantine"]).is_dir()

    # -- the run's Ledger (deid.settlement) -------------------------------------------------
    def record(self, ref: str, outcome: Outcome) -> None:
        """The outcome's audit line (it reaches the disk with its batch's sync)."""
        if self.trail is not None:
            self.trail.record(outcome)

    def sync(self) -> None:
        """Make the outputs written so far and their audit lines durable (one sync for many)."""
        sync_file_systems(self.synced)
        if self.trail is not None:
            self.trail.flush()

    def release(self, ref: str, outcome: Outcome) -> None:
        """Journal a source as done: a later run skips it."""
        entry: dict[str, object]
        match outcome:
            case Written(released=facts):  # released values, so a later skip can still be audited
                entry = {"ref": ref, "status": "written", "output": facts.output,
                         "quarantine": None,
                         **{name: getattr(facts, name) for name in RELEASED_FACTS}, **self.stamp}
            case Quarantined(code=code, entry=quarantine):
                entry = {"ref": ref, "status": "quarantined", "output": None,
                         "quarantine": quarantine, "reason": code, **self.stamp}
            case _:
                raise TypeError(f"a run journals written or quarantined sources, not {outcome!r}")
        self._handle.write(json.dumps(entry) + "\n")

    @contextmanager
    def releasing(self) -> Iterator[None]:
        """A batch's releases (deid.settlement.commit): its lines reach the OS together."""
        try:
            yield
        finally:
            self._handle.flush()

    def close(self) -> None:
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        finally:
            try:
                self._handle.close()
            except OSError:  # a full disk: what was not journalled is done again by a rerun
                pass


def made_with_another_profile(entry: Mapping[str, object], stamp: Mapping[str, str]) -> bool:
    """Whether a journal entry was made with another profile or deny-list than ``stamp`` names (an
    entry of a version that did not record them counts as made with this one)."""
    if "profile_sha256" not in entry or not stamp:
        return False
    return any(entry.get(name, "") != stamp.get(name, "")
               for name in ("profile_sha256", "deny_list_sha256"))


def skipped_outcome(entry: dict) -> Skipped:
    """The outcome of an object an earlier run finished, from its journal entry (released
    values)."""
    if entry.get("status") != "written":
        return Skipped(quarantine=entry.get("quarantine"))
    value = {name: str(entry.get(name) or "") for name in RELEASED_FACTS}
    facts = Released(value["output"], sop_class_uid=value["sop_class_uid"],
                     modality=value["modality"], patient_id=value["patient_id"],
                     study_uid=value["study_uid"], series_uid=value["series_uid"],
                     sop_uid=value["sop_uid"])
    return Skipped(facts, entry.get("quarantine"))
