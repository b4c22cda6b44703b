"""Logs never carry patient identity: what deid logs holds no planted value, and the allow-list
processor drops any key it does not know."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from support import phi_found

from deid import logs
from deid.outcome import Quarantined
from deid.pipeline import Pipeline
from deid.run import RunPaths, run
from deid.synthetic import make_patient, oddities, write_sample_study


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    yield
    structlog.reset_defaults()


def _inputs(folder: Path) -> list:
    patients = [make_patient(0), make_patient(1)]
    write_sample_study(folder, patients[0], slices=2, size=16)
    write_sample_study(folder, patients[1], slices=1, size=16)
    odd = folder / "odd"
    oddities.not_dicom(odd)
    oddities.truncated_dicom(odd, patients[0])
    oddities.unknown_transfer_syntax(odd, patients[0])
    oddities.secondary_capture(odd, patients[0])
    oddities.ct_bad_date(odd, patients[1])
    return patients


def _everything(entries: list[dict]) -> str:
    return json.dumps(entries, default=str, ensure_ascii=False)


def test_a_run_logs_no_planted_value(tmp_path: Path, vghtpe, key) -> None:
    patients = _inputs(tmp_path / "in")
    paths = RunPaths.beside(tmp_path / "out", None, None)
    lookup = {patients[0].patient_id: "622"}  # patient 1 is missing: quarantined as well
    with capture_logs() as entries:
        summary = run([tmp_path / "in"], paths, vghtpe, key, workers=1, lookup=lookup, progress=False)
    assert summary.quarantined >= 5 and summary.written > 0
    events = [entry["event"] for entry in entries]
    assert events.count("quarantined") == summary.quarantined, events  # every event was captured
    assert "run started" in events and "run finished" in events
    text = _everything(entries)
    for patient in patients:
        assert phi_found(text, patient) == []
        assert patient.study_date not in text and patient.birth_date not in text
    assert str(tmp_path / "in") not in text  # no source path (folder names carry identity)
    codes = {entry.get("code") for entry in entries if entry["event"] == "quarantined"}
    assert {"not-dicom", "unreadable", "unknown-transfer-syntax", "burned-in-annotation-risk",
            "patient-not-in-lookup"} <= codes


def test_the_pipeline_logs_no_planted_value(tmp_path: Path, vghtpe, key) -> None:
    patient = make_patient(2)
    folder = tmp_path / "in"
    sources = write_sample_study(folder, patient, slices=1, size=16) + [oddities.ct_bad_date(folder, patient)]
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q")
    with capture_logs() as entries:
        outcomes = [pipeline.process_bytes(path.read_bytes()) for path in sources]
    assert [isinstance(o, Quarantined) for o in outcomes].count(True) == 1
    assert phi_found(_everything(entries), patient) == []
    for outcome in outcomes:
        assert phi_found(json.dumps(outcome.__dict__, default=str), patient) == []


def test_allow_list_drops_unknown_keys() -> None:
    event = {"event": "quarantined", "code": "not-dicom", "patient_name": "CHEN^MEI-LING",
             "PatientID": "A123456789", "value": "19480608", "level": "warning"}
    assert logs.allow_list(None, "warning", dict(event)) == {
        "event": "quarantined", "code": "not-dicom", "level": "warning"}


def test_configured_logger_writes_only_allowed_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logs.configure(json=True)
    patient = make_patient(0)
    logs.get_logger("deid.test").warning("quarantined", code="unreadable", patient=patient.name,
                                         source=f"/data/{patient.patient_id}.dcm", stage="read")
    line = json.loads(stream.getvalue().strip())
    assert line["event"] == "quarantined" and line["code"] == "unreadable" and line["stage"] == "read"
    assert set(line) <= logs.ALLOWED_KEYS
    assert phi_found(stream.getvalue(), patient) == []


def test_allowed_keys_are_free_of_identity_names() -> None:
    for word in ("name", "patient", "birth", "accession", "value", "uid", "source"):
        assert not [key for key in logs.ALLOWED_KEYS if word in key.lower()], word


def test_structlog_comes_with_the_first_line_logged() -> None:
    """A line under the level costs no import (`deid -q` with nothing to say never loads
    structlog); the first line at or above it is written as configured, keys allow-listed."""

    script = (
        "import logging, sys\n"
        "from deid import logs\n"
        "logs.configure(json=True, level=logging.WARNING)\n"
        "logs.get_logger('deid.test').info('run started', run_id='r1')\n"
        "assert 'structlog' not in sys.modules\n"
        "logs.get_logger('deid.test').warning('quarantined', code='not-dicom', value='19480608')\n"
        "assert 'structlog' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["event"], line["code"], line["level"]) for line in lines] == [
        ("quarantined", "not-dicom", "warning")]
    assert "19480608" not in done.stderr
