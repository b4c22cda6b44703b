"""`deid reidentify`: an authorised person traces a released Patient ID or UID back to the patient.

The question is recorded in the audit log first (OS user, host, time, the released value asked
about, never the answer); no record, no answer.  The map is opened with the key (a wrong key fails
before anything is printed), and the answer goes to standard output only.

``--export DIR`` writes the whole map as the two files a validation needs (e.g. the NCI MIDI-B
scoring script, CBIIT/MIDI_validation_script): ``uid_mapping.csv`` (every original Study, Series
and SOP Instance UID and the released one) and ``patid_mapping.csv`` (every original Patient ID
and the released one), columns ``id_old,id_new``, mode 0600; the export is recorded like a
question, and existing files are never overwritten.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from deid.audit.files import AppendFile, utc_now
from deid.audit.reid import IDENTITY_FIELDS, WrongKeyError, read_map
from deid.audit.trail import AUDIT_DIR, QUERY_OUTCOME
from deid.errors import UsageError
from deid.keys import SecretKey

QUERIES = "reidentify-queries.jsonl"
UID_MAPPING = "uid_mapping.csv"
PATID_MAPPING = "patid_mapping.csv"
EXPORT_HEADER = ("id_old", "id_new")  # the columns the MIDI-B validation script reads


@dataclass
class Answer:
    """The map entries that match a question, and what could not be searched."""

    asked: dict[str, str]
    entries: list[dict] = field(default_factory=list)
    other_key_files: int = 0
    damaged_lines: int = 0

    @property
    def found(self) -> bool:
        return bool(self.entries)


def reidentify(records: Path, key: SecretKey, *, patient_id: str | None = None,
               uid: str | None = None) -> Answer:
    """Record the question, then answer it from the map (``WrongKeyError`` when the key does not
    open it: the refusal is recorded too)."""
    records = Path(records)
    if not records.is_dir():
        raise UsageError(f"{records}: no such records folder")
    if (patient_id is None) == (uid is None):
        raise UsageError("ask about one released value: --patient-id ID or --uid UID")
    asked = {"patient_id": patient_id} if patient_id is not None else {"uid": uid or ""}
    value = (patient_id if patient_id is not None else uid or "").strip()
    if not value:
        raise UsageError("the released value asked about is empty")
    query = {"time": utc_now(), "outcome": QUERY_OUTCOME, "source": "reidentify",
             "user": _user(), "os_uid": os.getuid(), "host": socket.gethostname(),
             "asked": asked, "key_fingerprint": key.fingerprint}
    try:
        contents = read_map(records, key)
    except WrongKeyError:
        _record(records, {**query, "result": "wrong-key"})
        raise
    if patient_id is not None:
        entries = [e for e in contents.entries if e["released"].get("patient_id") == value]
    else:
        uid_fields = ("study_uid", "series_uid", "sop_uid")
        entries = [e for e in contents.entries if value in (e["released"].get(f) for f in uid_fields)]
    entries = list({e["released"].get("sop_uid"): e for e in entries}.values())  # once per object
    _record(records, {**query, "result": "answered" if entries else "not-found", "objects": len(entries)})
    return Answer(asked, entries, contents.other_key_files, contents.damaged_lines)


@dataclass
class Export:
    """What ``--export`` wrote: the two files and how many rows each holds."""

    uid_file: Path
    patid_file: Path
    uids: int
    patient_ids: int
    other_key_files: int = 0
    damaged_lines: int = 0


def export_mapping(records: Path, key: SecretKey, folder: Path) -> Export:
    """Write uid_mapping.csv and patid_mapping.csv (``id_old,id_new``, mode 0600) into ``folder``
    (created 0700 when new).  Existing files are refused (``UsageError``) before anything is
    read; the export is recorded in the audit log before the files are written."""
    records = Path(records)
    if not records.is_dir():
        raise UsageError(f"{records}: no such records folder")
    folder = Path(folder)
    targets = (folder / UID_MAPPING, folder / PATID_MAPPING)
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if existing:
        raise UsageError(f"--export: {', '.join(existing)} already exist(s); move them away or export into "
                         "another folder (an export never overwrites)")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--export: {folder} is not a folder")
    query = {"time": utc_now(), "outcome": QUERY_OUTCOME, "source": "reidentify",
             "user": _user(), "os_uid": os.getuid(), "host": socket.gethostname(),
             "asked": {"export": str(folder.resolve())}, "key_fingerprint": key.fingerprint}
    try:
        contents = read_map(records, key)
    except WrongKeyError:
        _record(records, {**query, "result": "wrong-key"})
        raise
    uids: dict[tuple[str, str], None] = {}
    patient_ids: dict[tuple[str, str], None] = {}
    for entry in contents.entries:
        original, released = entry["original"], entry["released"]
        for name in ("study_uid", "series_uid", "sop_uid"):
            if original.get(name) and released.get(name):
                uids[(original[name], released[name])] = None
        if original.get("patient_id") and released.get("patient_id"):
            patient_ids[(original["patient_id"], released["patient_id"])] = None
    _record(records, {**query, "result": "exported", "objects": len(contents.entries),
                      "uids": len(uids), "patient_ids": len(patient_ids)})
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
        os.chmod(folder, 0o700)
    for target, rows in zip(targets, (uids, patient_ids)):
        _write_new_csv(target, sorted(rows))
    return Export(targets[0], targets[1], len(uids), len(patient_ids), contents.other_key_files,
                  contents.damaged_lines)


def _write_new_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    """A new file (never an existing one), mode 0600 from its creation, synced."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    writer.writerows(rows)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"--export: {path} already exists; an export never overwrites") from None
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text.getvalue())
        file.flush()
        os.fsync(file.fileno())


def render_export(done: Export) -> str:
    """What ``--export`` tells the person (counts and file names, no value)."""
    first = (f"deid reidentify: {done.uids} UID and {done.patient_ids} Patient ID mapping(s) written to "
             f"{done.uid_file} and {done.patid_file} (mode 0600: they re-identify the release; keep them "
             "as safe as the key); the export is recorded in the audit log")
    lines = [first]
    if done.other_key_files:
        lines.append(f"note: {done.other_key_files} map file(s) were written with another key and not "
                     "exported")
    if done.damaged_lines:
        lines.append(f"note: {done.damaged_lines} map entr(ies) did not decrypt (damaged or altered)")
    return "\n".join(lines) + "\n"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _record(records: Path, line: dict) -> None:
    """Append the question to the audit log, durably; refuse to answer when that fails."""
    try:
        folder = records / AUDIT_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        log = AppendFile(folder / QUERIES)
        log.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        log.close()
    except OSError:
        raise UsageError(f"{records}: cannot record the question in the audit log "
                         f"({AUDIT_DIR}/{QUERIES}); no answer is given without a record") from None


def render(answer: Answer) -> str:
    """The answer as text for a person: the patient(s), then each study, series and object."""
    what, value = next(iter(answer.asked.items()))
    label = "Patient ID" if what == "patient_id" else "UID"
    if not answer.found:
        return f"deid reidentify: no released object has the {label} {value} in these records\n"
    lines = [f"deid reidentify: released {label} {value}: {len(answer.entries)} object(s)"]
    patients: dict[tuple[str, str], list[dict]] = {}
    for entry in answer.entries:
        o = entry["original"]
        patients.setdefault((o.get("patient_id", ""), o.get("patient_name", "")), []).append(entry)
    for (original_id, name), entries in patients.items():
        released = entries[0]["released"]
        lines += ["", f"patient  original ID {original_id or '(none)'}, name {name or '(none)'}",
                  (f"         released ID {released.get('patient_id') or '(none)'}, "
                   f"name (case number) {released.get('patient_name') or '(none)'}")]
        studies: dict[str, list[dict]] = {}
        for entry in entries:
            studies.setdefault(entry["original"].get("study_uid", ""), []).append(entry)
        for study_uid, in_study in sorted(studies.items()):
            first = in_study[0]
            lines += [f"  study    {first['released'].get('study_uid')}  <-  {study_uid}",
                      (f"           accession {first['released'].get('accession_number') or '(none)'}"
                       f"  <-  {first['original'].get('accession_number') or '(none)'}")]
            series: dict[str, list[dict]] = {}
            for entry in in_study:
                series.setdefault(entry["original"].get("series_uid", ""), []).append(entry)
            for series_uid, in_series in sorted(series.items()):
                r = in_series[0]["released"]
                lines.append(f"    series {r.get('series_uid')}  <-  {series_uid}  "
                             f"({r.get('modality') or '?'}, {len(in_series)} object(s))")
                for entry in sorted(in_series, key=lambda e: e["released"].get("sop_uid", "")):
                    lines.append(f"      object {entry['released'].get('sop_uid')}  <-  "
                                 f"{entry['original'].get('sop_uid')}  output {entry['released'].get('output')}")
    if answer.other_key_files:
        lines.append(f"\nnote: {answer.other_key_files} map file(s) were written with another key and not searched")
    if answer.damaged_lines:
        lines.append(f"\nnote: {answer.damaged_lines} map entr(ies) did not decrypt (damaged or altered)")
    return "\n".join(lines) + "\n"


def as_json(answer: Answer) -> str:
    """The answer as JSON: one item per object with its original and released identity values."""
    objects = [{"original": {k: e["original"].get(k, "") for k in IDENTITY_FIELDS},
                "released": e["released"], "run_id": e.get("run_id"), "time": e.get("time")}
               for e in answer.entries]
    return json.dumps({"asked": answer.asked, "objects": objects,
                       "other_key_files": answer.other_key_files,
                       "damaged_lines": answer.damaged_lines}, ensure_ascii=False, indent=2) + "\n"
