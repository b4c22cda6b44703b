"""The audit record (deid.audit.record): one schema, made from an outcome, written as one JSON line
and read back field by field; lines of earlier versions read the same."""

from __future__ import annotations

import json

from deid.audit.record import VERSION, AuditRecord, Event, event_of
from deid.outcome import Forwarded, Quarantined, Released, Retry, Skipped, Written

FACTS = Released("p/s/e/2.25.3.dcm", sop_class_uid="1.2.840.10008.5.1.4.1.1.2", modality="CT",
                 patient_id="0000622", study_uid="2.25.1", series_uid="2.25.2", sop_uid="2.25.3",
                 counts={"remove": 40}, adjusted={"empty": 2}, applied={"(0010,0010)": "case_number"},
                 kept_text={"StudyDescription": ["CT ABDOMEN"]}, flagged_text=("ImageComments",),
                 text_replaced={"ImageComments": 1},
                 references=({"kind": "instance", "uid": "2.25.9", "sop_class_uid": "", "path": "x"},))
COMMON: dict = {"time": "2026-12-06T03:00:00.000000Z", "run_id": "r1", "source": "serve",
                "profile": {"name": "vghtpe", "version": "1", "sha256": "ab"}, "key_fingerprint": "kf"}


def test_each_outcome_is_one_event() -> None:
    assert [event_of(o) for o in (Written(FACTS), Forwarded(FACTS, "PACS"), Skipped(FACTS),
                                  Quarantined("not-dicom"), Retry("destination-busy", "PACS", FACTS))] == [
        Event.WRITTEN, Event.FORWARDED, Event.SKIPPED, Event.QUARANTINED, Event.RETRYING]


def test_a_released_object_round_trips_through_its_line() -> None:
    record = AuditRecord.of(Forwarded(FACTS, "PACS@127.0.0.1:11112"), **COMMON)
    text = record.to_json()
    assert "\n" not in text and json.loads(text)["version"] == VERSION
    back = AuditRecord.from_json(text)
    assert back == record
    assert (back.event, back.destination, back.sop_uid, back.output) == (
        Event.FORWARDED, "PACS@127.0.0.1:11112", "2.25.3", "p/s/e/2.25.3.dcm")
    assert back.actions == {"remove": 40} and back.applied == {"(0010,0010)": "case_number"}
    assert back.kept_text == {"StudyDescription": ["CT ABDOMEN"]} and back.flagged_text == ("ImageComments",)
    assert back.references[0]["uid"] == "2.25.9" and back.reason is None


def test_a_quarantine_line_has_its_reason_and_no_released_values() -> None:
    outcome = Quarantined("forward-rejected", "forward", "", "e1", "refused", destination="PACS")
    data = json.loads(AuditRecord.of(outcome, **COMMON).to_json())
    assert data["outcome"] == "quarantined" and data["reason"] == "forward-rejected"
    assert data["reason_detail"] == {"stage": "forward", "path": "", "message": "refused"}
    assert data["quarantine"] == "e1" and data["destination"] == "PACS"
    assert all(data[k] == "" for k in ("patient_id", "study_uid", "series_uid", "sop_uid"))
    assert data["output"] is None and data["actions"] == {}


def test_a_skipped_quarantine_names_its_entry() -> None:
    record = AuditRecord.of(Skipped(quarantine="e2"), **COMMON)
    assert (record.event, record.quarantine, record.sop_uid, record.output) == (Event.SKIPPED, "e2", "", None)


def test_a_version_1_line_reads_the_same() -> None:
    """A line written before the version field (an old records folder) reads as version 1."""
    old = {"time": "2026-11-30T16:30:00.123456Z", "run_id": "ab12", "source": "run", "outcome": "written",
           "reason": None, "reason_detail": None, "destination": None,
           "profile": {"name": "vghtpe", "version": "1", "sha256": "x"}, "key_fingerprint": "kf",
           "sop_class_uid": "1.2", "modality": "CT", "patient_id": "0000622", "study_uid": "2.25.1",
           "series_uid": "2.25.2", "sop_uid": "2.25.3", "output": "a/b/c.dcm", "quarantine": None,
           "actions": {"remove": 4}, "adjusted": {}, "applied": {"(0010,0010)": "case_number"},
           "kept_text": {"BodyPartExamined": ["ABDOMEN"]}, "flagged_text": [], "text_replaced": {},
           "references": []}
    record = AuditRecord.from_json(json.dumps(old))
    assert record is not None and record.version == 1 and record.event is Event.WRITTEN
    assert record.to_dict() == {**old, "flagged_text": [], "version": 1}


def test_damaged_and_foreign_lines_read_as_what_they_still_say() -> None:
    assert AuditRecord.from_json('{"outcome": "writ') is None  # cut by a crash
    assert AuditRecord.from_json("[1, 2]") is None
    odd = AuditRecord.from_json(json.dumps({"outcome": "quarantined", "reason": {"code": "not-dicom"},
                                            "actions": {"remove": "many", "keep": 2, "flag": True},
                                            "kept_text": {"A": "one", "B": 7}, "sop_uid": 5}))
    assert odd is not None and odd.reason == "not-dicom" and odd.actions == {"keep": 2}
    assert odd.kept_text == {"A": ["one"]} and odd.sop_uid == "5" and odd.outcome == "quarantined"
    query = AuditRecord.from_json(json.dumps({"time": "t", "outcome": "reidentify-query",
                                              "source": "reidentify", "user": "someone"}))
    assert query is not None and query.event is Event.REIDENTIFY_QUERY and query.run_id == ""
    assert AuditRecord.from_json('{"outcome": "teleported"}').event is None


def test_a_records_folder_with_old_and_new_lines_aggregates_both(tmp_path) -> None:
    """An old trail (version 1 lines, written before this schema) and a new one in one records
    folder: the report counts the objects of both, and the same object once."""
    from deid.audit.aggregate import aggregate
    from deid.synthetic.audit_records import audit_line

    folder = tmp_path / "audit"
    folder.mkdir()
    old = audit_line(sop_uid="2.25.100", series_uid="2.25.10", study_uid="2.25.1", patient_id="0000622")
    assert "version" not in old
    (folder / "old-run.jsonl").write_text(json.dumps(old) + "\n", encoding="utf-8")
    new = [AuditRecord.of(o, **COMMON).to_json() for o in (
        Written(FACTS), Forwarded(FACTS, "PACS"), Quarantined("not-dicom", "read", "", "e1", "no"))]
    (folder / "new-serve.jsonl").write_text("\n".join(new) + "\n", encoding="utf-8")
    agg = aggregate(tmp_path)
    assert (agg.lines, agg.bad_lines, agg.objects) == (4, 0, 2)
    assert agg.outcomes == {"written": 2, "forwarded": 1, "quarantined": 1}
    assert agg.reasons == {"not-dicom": 1} and agg.modalities["CT"] == 2
    assert agg.references_checked == 1 and sum(agg.dangling_counts.values()) == 1  # 2.25.9: not released
