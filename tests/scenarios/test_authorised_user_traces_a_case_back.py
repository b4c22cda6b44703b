"""An authorised person holding the key traces a released case back to its patient with
`deid reidentify`; the question (not the answer) is recorded in the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from support import deid, run_args

from deid.audit.trail import AUDIT_DIR


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, sample_study: Path, key_file: Path) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("trace")
    out, records = base / "out", base / "records"
    result = deid(*run_args(sample_study, out, key_file, "--records", records))
    assert result.returncode == 0, result.stderr
    return out, records


def _released(out: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(out.rglob("*.dcm"))]


def _queries(records: Path) -> list[dict]:
    lines = []
    for path in (records / AUDIT_DIR).glob("*.jsonl"):
        lines += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line["outcome"] == "reidentify-query"]


def test_a_released_patient_id_leads_back_to_the_patient(release, key_file: Path, patient) -> None:
    out, records = release
    released = _released(out)
    result = deid("reidentify", "--key-file", key_file, records, "--patient-id", released[0].PatientID)
    assert result.returncode == 0, result.stderr
    assert patient.patient_id in result.stdout
    assert patient.dicom_name in result.stdout and patient.accession_number in result.stdout
    assert patient.study_instance_uid in result.stdout
    assert f"{len(released)} object(s)" in result.stdout
    for ds in released:  # every released object is named, with its original UID
        assert ds.SOPInstanceUID in result.stdout


@pytest.mark.parametrize("level", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_a_released_uid_leads_back_to_the_original(release, key_file: Path, patient, level: str) -> None:
    out, records = release
    rtss = next(ds for ds in _released(out) if ds.Modality == "RTSTRUCT")
    result = deid("reidentify", "--key-file", key_file, records, "--uid", getattr(rtss, level), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    objects = answer["objects"]
    assert len(objects) == (len(_released(out)) if level == "StudyInstanceUID" else 1)
    item = next(o for o in objects if o["released"]["sop_uid"] == rtss.SOPInstanceUID)
    assert item["original"]["patient_id"] == patient.patient_id
    assert item["original"]["study_uid"] == patient.study_instance_uid
    assert item["original"]["series_uid"] == patient.series_uid("RTSS")
    assert item["released"]["patient_name"] == str(rtss.PatientName)  # the case number


def test_the_question_is_recorded_and_the_answer_is_not(release, key_file: Path, patient) -> None:
    out, records = release
    released_id = _released(out)[0].PatientID
    before = len(_queries(records))
    assert deid("reidentify", "--key-file", key_file, records, "--patient-id", released_id).returncode == 0
    queries = _queries(records)
    assert len(queries) == before + 1
    query = queries[-1]
    assert query["asked"] == {"patient_id": released_id} and query["result"] == "answered"
    assert query["user"] and query["time"].endswith("Z")
    text = (records / AUDIT_DIR / "reidentify-queries.jsonl").read_text(encoding="utf-8")
    assert patient.patient_id not in text and patient.name not in text


def test_an_unknown_released_id_finds_nothing(release, key_file: Path) -> None:
    _, records = release
    result = deid("reidentify", "--key-file", key_file, records, "--patient-id", "not-a-released-id")
    assert result.returncode == 3
    assert "no released object" in result.stdout
    assert _queries(records)[-1]["result"] == "not-found"
