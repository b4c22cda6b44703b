"""The closed set of outcomes (deid.outcome): what the pipeline makes of an object, what a quarantine
keeps of its reason, and that everything released travels in one Released."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deid.errors import ObjectError
from deid.outcome import Forwarded, Quarantined, Released, Retry, Skipped, Written, released
from deid.pipeline import Pipeline, write_released
from deid.synthetic import make_patient, oddities, write_sample_study


def test_the_pipeline_ends_an_object_written_or_quarantined(tmp_path: Path, vghtpe, key) -> None:
    patient = make_patient(3)
    folder = tmp_path / "in"
    good = write_sample_study(folder, patient, slices=1, size=16)[0]
    bad = oddities.ct_bad_date(folder, patient)
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q")

    written = pipeline.deidentify_file(good)
    assert isinstance(written, Written) and written.data is not None
    assert written.data[128:132] == b"DICM" and not (tmp_path / "out").exists()  # bytes, not a file
    facts = written.released
    assert facts.sop_uid and facts.sop_uid in facts.output and facts.patient_id != patient.patient_id
    assert facts.counts["remove"] > 0 and facts.originals["patient_id"] == patient.patient_id
    assert patient.patient_id not in repr(written)  # the originals are hidden from repr

    on_disk = write_released(written, tmp_path / "out", durable=False)
    assert isinstance(on_disk, Written) and on_disk.data is None and on_disk.released is facts
    assert (tmp_path / "out" / facts.output).read_bytes() == written.data  # the outcome is frozen

    quarantined = pipeline.deidentify_file(bad)
    assert isinstance(quarantined, Quarantined)
    assert (quarantined.code, quarantined.stage) == ("rule-not-applicable", "rules")
    assert write_released(quarantined, tmp_path / "out") is quarantined
    stored = json.loads((tmp_path / "q" / str(quarantined.entry) / "reason.json").read_text())
    assert stored == quarantined.reason() and stored["message"] == quarantined.message


def test_a_reason_found_outside_the_pipeline_is_quarantined_the_same_way(tmp_path: Path, vghtpe,
                                                                       key) -> None:
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q")
    error = ObjectError("forward-rejected", "destination PACS refused the object permanently",
                        stage="forward")
    outcome = pipeline.quarantine(b"original bytes", error, destination="PACS")
    assert outcome == Quarantined("forward-rejected", "forward", "", outcome.entry,
                                  "destination PACS refused the object permanently", {}, "PACS")
    entry = tmp_path / "q" / str(outcome.entry)
    assert (entry / "original.dcm").read_bytes() == b"original bytes"
    assert json.loads((entry / "reason.json").read_text()) == error.as_reason()
    assert entry.stat().st_mode & 0o777 == 0o700


def test_an_internal_error_keeps_its_details_in_the_reason() -> None:
    reason = {"code": "internal-error", "stage": "rules", "path": "(0010,0010)", "message": "bug",
              "exception": "KeyError", "raised_in": "deid/engine/x.py:1"}
    outcome = Quarantined.of(reason, "abc")
    assert (outcome.code, outcome.stage, outcome.path, outcome.entry) == (
        "internal-error", "rules", "(0010,0010)", "abc")
    assert outcome.details == {"exception": "KeyError", "raised_in": "deid/engine/x.py:1"}
    assert outcome.reason() == reason
    assert Quarantined.of({}).code == "internal-error"  # a reason without a code is a bug


def test_outcomes_are_frozen_and_each_says_what_it_released() -> None:
    facts = Released("p/s/e/1.dcm", sop_uid="2.25.1")
    for outcome in (Written(facts, b"x"), Forwarded(facts, "PACS"), Skipped(facts),
                    Retry("destination-busy", "PACS", facts)):
        assert released(outcome) is facts
        with pytest.raises(dataclasses.FrozenInstanceError):
            outcome.released = None  # type: ignore[misc]
    for outcome in (Quarantined("not-dicom"), Retry("spool-unreadable"), Skipped(quarantine="q1"),
                    Forwarded()):
        assert released(outcome) is None
    assert Written(facts, b"x") == Written(facts, b"y")  # the bytes are not what an outcome is
    assert Written(facts, b"x").without_data().data is None
