"""The audit trail: one JSON line per object event, append-only, in a records folder.

Lines go to ``<records>/audit/<time>-<source>-<run id>.jsonl`` (one file per writer; readers read
every ``*.jsonl`` there), files 0600 in 0700 folders, never in the output.  A line holds released
values and counts only, never an original value::

    {"time": "2026-11-30T16:30:00.123456Z", "run_id": "ab12...", "source": "run",
     "outcome": "written", "reason": null, "destination": null,
     "profile": {"name": "vghtpe", "version": "1", "sha256": "..."}, "key_fingerprint": "...",
     "sop_class_uid": "...", "modality": "CT", "patient_id": "<released>", "study_uid": "<released>",
     "series_uid": "<released>", "sop_uid": "<released>", "output": "<relative path or null>",
     "quarantine": null, "actions": {"remove": 40, ...}, "applied": {"(0010,0010)": "case_number"},
     "kept_text": {"StudyDescription": ["..."]}, "flagged_text": [],
     "text_replaced": {"ImageComments": 1}, "references": [...]}

``outcome`` is the event: written | skipped | quarantined | forwarded | retrying (or what the
caller names).  A quarantined object has the released fields empty, ``reason`` its reason code and
``reason_detail`` the stage, element path and our message.  Lines of ``deid reidentify`` queries
have ``"outcome": "reidentify-query"`` (see ``deid.audit.reidentify``).

Each line reaches the OS when it is recorded (a crash of the process loses none); ``flush``
makes them durable.  ``deid run`` flushes with each journal batch, before the batch is journalled.
The original identity values of each released object go to the encrypted re-identification map
(``deid.audit.reid``), not here.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from deid.audit.files import AppendFile, file_stamp, utc_now
from deid.audit.reid import ReidMapWriter
from deid.keys import SecretKey
from deid.pipeline import Outcome, make_private_dir
from deid.profile.model import Profile

AUDIT_DIR = "audit"
QUERY_OUTCOME = "reidentify-query"
MAPPED_EVENTS = frozenset({"written", "forwarded"})  # events of a released object


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
        self._mapped: set[str] = set()  # released SOP UIDs already in this writer's map
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """This writer's audit file."""
        return self._file.path

    def record(self, outcome: Outcome, *, event: str | None = None,
               destination: str | None = None) -> None:
        """Append one line for an object event (default: the outcome's status); a released object's
        original identity goes to the re-identification map, once per object and writer."""
        event = event or outcome.status
        line = json.dumps(self.line(outcome, event, destination), ensure_ascii=False,
                          separators=(",", ":"), default=str)
        self._file.write(line.encode("utf-8") + b"\n")
        if event in MAPPED_EVENTS and outcome.originals and outcome.sop_uid:
            with self._lock:
                if outcome.sop_uid in self._mapped:
                    return
                self._mapped.add(outcome.sop_uid)
            self._map.add(outcome.originals, _released(outcome), run_id=self.run_id)
            self._map.add_tokens(_released(outcome), outcome.tokens, run_id=self.run_id)

    def line(self, outcome: Outcome, event: str, destination: str | None = None) -> dict:
        """The audit line of an event as a dict (released values and counts only)."""
        released = outcome.status != "quarantined"
        reason = outcome.reason or {}
        return {
            "time": utc_now(), "run_id": self.run_id, "source": self.source, "outcome": event,
            "reason": reason.get("code") if reason else None,
            "reason_detail": {k: reason.get(k, "") for k in ("stage", "path", "message")} if reason else None,
            "destination": destination, "profile": self._profile, "key_fingerprint": self._fingerprint,
            "sop_class_uid": outcome.sop_class_uid if released else "",
            "modality": outcome.modality if released else "",
            "patient_id": outcome.patient_id if released else "",
            "study_uid": outcome.study_uid if released else "",
            "series_uid": outcome.series_uid if released else "",
            "sop_uid": outcome.sop_uid if released else "",
            "output": outcome.output, "quarantine": outcome.quarantine,
            "actions": dict(outcome.counts), "adjusted": dict(outcome.adjusted),
            "applied": outcome.applied, "kept_text": outcome.kept_text,
            "flagged_text": outcome.flagged_text, "text_replaced": outcome.text_replaced,
            "references": outcome.references,
            **({"pixels": outcome.pixels} if outcome.pixels else {}),
        }

    def flush(self) -> None:
        """Make every line and map entry recorded so far durable."""
        self._file.sync()
        self._map.sync()

    def close(self) -> None:
        self._file.close()
        self._map.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _released(outcome: Outcome) -> dict[str, str | None]:
    return {
        "patient_id": outcome.patient_id,
        "patient_name": outcome.pseudonyms.get("patient_name", ""),
        "accession_number": outcome.pseudonyms.get("accession_number", ""),
        "study_uid": outcome.study_uid, "series_uid": outcome.series_uid, "sop_uid": outcome.sop_uid,
        "sop_class_uid": outcome.sop_class_uid, "modality": outcome.modality, "output": outcome.output,
    }
