"""`deid reidentify` in-process: answers from the map, records the question first, refuses to
answer when it cannot record it, and says plainly when there is no map."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from deid.audit.reidentify import as_json, reidentify, render
from deid.audit.trail import AuditTrail
from deid.cli import main
from deid.errors import UsageError
from deid.pipeline import Pipeline
from deid.synthetic import make_patient, write_sample_study


@pytest.fixture
def records(tmp_path: Path, vghtpe, key) -> tuple[Path, list, object]:
    patient = make_patient(7)
    sources = write_sample_study(tmp_path / "in", patient, slices=1, size=16)
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q")
    outcomes = [pipeline.process_file(path) for path in sources]
    folder = tmp_path / "records"
    trail = AuditTrail(folder, key=key, profile=vghtpe, run_id="q1", source="run")
    for outcome in outcomes:
        trail.record(outcome)
    trail.close()
    return folder, outcomes, patient


def test_the_answer_names_originals_and_released_objects(records, key) -> None:
    folder, outcomes, patient = records
    answer = reidentify(folder, key, patient_id=outcomes[0].released.patient_id)
    assert len(answer.entries) == len(outcomes)
    text = render(answer)
    assert patient.patient_id in text and patient.accession_number in text
    assert all(o.released.sop_uid in text for o in outcomes)
    objects = json.loads(as_json(answer))["objects"]
    assert {o["original"]["sop_uid"] for o in objects} == {e["original"]["sop_uid"] for e in answer.entries}


def test_the_question_is_recorded_before_the_answer(records, key) -> None:
    folder, outcomes, patient = records
    reidentify(folder, key, uid=outcomes[-1].released.series_uid)
    line = json.loads((folder / "audit" / "reidentify-queries.jsonl").read_text().splitlines()[-1])
    assert line["asked"] == {"uid": outcomes[-1].released.series_uid} and line["objects"] == 1
    assert patient.patient_id not in json.dumps(line)


def test_no_record_no_answer(records, key) -> None:
    folder, outcomes, _ = records
    queries = folder / "audit" / "reidentify-queries.jsonl"
    queries.mkdir()  # the log cannot be appended to (a folder in its place)
    with pytest.raises(UsageError, match="no answer is given without a record"):
        reidentify(folder, key, patient_id=outcomes[0].released.patient_id)


@pytest.fixture
def logging_restored():
    """main() configures logging to this test's captured stderr, which pytest closes afterwards:
    later tests that log would write to a closed file, so the previous configuration comes back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_a_folder_without_a_map_is_a_usage_error(tmp_path: Path, key_file: Path, capsys, logging_restored) -> None:
    (tmp_path / "records").mkdir()
    code = main(["reidentify", "--key-file", str(key_file), str(tmp_path / "records"), "--uid", "2.25.1"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no re-identification map here" in captured.err
