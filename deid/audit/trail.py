"""The audit trail: one JSON line per object event, append-only, in a records folder.

Lines go to ``<records>/audit/<time>-<source>-<run id>.jsonl`` (one file per writer; readers read
every ``*.jsonl`` there), files 0600 in 0700 folders, never in the output.  A line holds released
values and counts only, never an original value; its schema is
:class:`deid.audit.record.AuditRecord` (a version 2 line)::

    {"outcome": "written", "time": "2026-11-30T16:30:00.123456Z", "run_id": "ab12...", "source": "run",
     "reason": null, "destination": null,
     "profile": {"name": "vghtpe", "version": "1", "sha256": "..."}, "key_fingerprint": "...",
     "sop_class_uid": "...", "modality": "CT", "patient_id": "<released>", "study_uid": "<released>",
     "series_uid": "<released>", "sop_uid": "<released>", "output": "<relative path or null>",
     "quarantine": null, "actions": {"remove": 40, ...}, "applied": {"(0010,0010)": "case_number"},
     "kept_text": {"StudyDescription": ["..."]}, "flagged_text": [],
     "text_replaced": {"ImageComments": 1}, "references": [...], "version": 2}

``outcome`` is the event (:class:`deid.audit.record.Event`), named by the outcome's type
(:mod:`deid.outcome`): written | skipped | quarantined | forwarded | retrying.  A quarantined
object has the released fields empty, ``reason`` its reason code and ``reason_detail`` the stage,
element path and our message.  Lines of ``deid reidentify`` queries
have ``"outcome": "reidentify-query"`` (see ``deid.audit.reidentify``).

Each line reaches the OS when it is recorded (a crash of the process loses none); ``flush``
makes them durable.  ``deid run`` flushes with each journal batch, before the batch is journalled.
The original identity values of each released object go to the encrypted re-identification map
(``deid.audit.reid``), not here.
"""

from __future__ import annotations

import threading
from pathlib import Path

from deid.audit.files import AppendFile, file_stamp, utc_now
from deid.audit.mapped import MappedUids
from deid.audit.record import AuditRecord, Event
from deid.audit.reid import ReidMapWriter
from deid.keys import SecretKey
from deid.outcome import Forwarded, Outcome, Released, Written, released
from deid.pipeline import make_private_dir
from deid.profile.model import Profile

AUDIT_DIR = "audit"
QUERY_OUTCOME = str(Event.REIDENTIFY_QUERY)


class AuditTrail:
    """Append-only audit records (JSON lines, fsync'd) + the encrypted re-identification map,
    in a records folder (never in the output)."""

    def __init__(self, folder: Path, *, key: SecretKey, profile: Profile, run_id: str,
                 source: str) -> None:
        self.folder = make_private_dir(Path(folder))
        self.run_id = run_id
        self.source = source
        self._profile = {"name": profile.name, "version": profile.version, "sha256": profile.sha256}
        self._fingerprint = key.fingerprint
        make_private_dir(self.folder / AUDIT_DIR)
        self._file = AppendFile(self.folder / AUDIT_DIR / f"{file_stamp()}-{source}-{run_id}.jsonl")
        self._map = ReidMapWriter(self.folder, key=key, run_id=run_id, source=source)
        self._mapped = MappedUids()  # released SOP UIDs already in this writer's map (on disk)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """This writer's audit file."""
        return self._file.path

    def record(self, outcome: Outcome) -> None:
        """Append the outcome's line; a released object's original identity goes to the
        re-identification map, once per object and writer (when written or forwarded)."""
        self._file.write(self.line(outcome).to_json().encode("utf-8") + b"\n")
        facts = released(outcome)
        if isinstance(outcome, (Written, Forwarded)) and facts and facts.originals and facts.sop_uid:
            with self._lock:
                if not self._mapped.add(facts.sop_uid):
                    return
            self._map.add(facts.originals, _released(facts), run_id=self.run_id)
            self._map.add_tokens(_released(facts), facts.tokens, run_id=self.run_id)

    def line(self, outcome: Outcome) -> AuditRecord:
        """The audit record of an outcome (released values and counts only)."""
        return AuditRecord.of(outcome, time=utc_now(), run_id=self.run_id, source=self.source,
                              profile=self._profile, key_fingerprint=self._fingerprint)

    def flush(self) -> None:
        """Make every line and map entry recorded so far durable."""
        self._file.sync()
        self._map.sync()

    def close(self) -> None:
        self._file.close()
        self._map.close()
        with self._lock:
            self._mapped.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _released(facts: Released) -> dict[str, str]:
    return {
        "patient_id": facts.patient_id,
        "patient_name": facts.pseudonyms.get("patient_name", ""),
        "accession_number": facts.pseudonyms.get("accession_number", ""),
        "study_uid": facts.study_uid, "series_uid": facts.series_uid, "sop_uid": facts.sop_uid,
        "sop_class_uid": facts.sop_class_uid, "modality": facts.modality, "output": facts.output,
    }
