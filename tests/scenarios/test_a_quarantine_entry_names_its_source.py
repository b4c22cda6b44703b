"""A data manager looks for the input a quarantine entry came from: its reason.json names the source
by its path relative to the SRC argument (the quarantine is a PHI zone), so nobody has to hash every
input.  The log names the quarantine entry only, never the source; so do the audit records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import deid, run_args

from deid.synthetic import make_patient, oddities, write_sample_study

PATIENT = make_patient(3)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("named")
    incoming = root / "incoming"
    write_sample_study(incoming, PATIENT, slices=1, size=16)
    odd = incoming / PATIENT.patient_id / "odd"  # a folder named for the patient, as exports often are
    files = {
        oddities.not_dicom(odd): "not-dicom",
        oddities.truncated_dicom(odd, PATIENT): "incomplete-object",
        oddities.secondary_capture(odd, PATIENT): "burned-in-annotation-risk",
    }
    single = root / "loose" / "letter.dcm"  # a file named on the command line
    single.parent.mkdir()
    single.write_text("A scanned letter.\n")
    result = deid(*run_args([incoming, single], root / "out", key_file))
    return {"root": root, "incoming": incoming, "files": files, "single": single, "result": result}


def _reasons(root: Path) -> dict[str, dict]:
    return {entry.name: json.loads((entry / "reason.json").read_text())
            for entry in (root / "out-quarantine").iterdir()}


def test_each_entry_names_its_source_relative_to_its_src(scene: dict) -> None:
    assert scene["result"].returncode == 3, scene["result"].stderr
    by_source = {reason["source"]: reason["code"] for reason in _reasons(scene["root"]).values()}
    expected = {str(path.relative_to(scene["incoming"])): code for path, code in scene["files"].items()}
    expected[scene["single"].name] = "not-dicom"  # SRC is the file itself: its own name
    assert by_source == expected


def test_the_log_names_the_entry_never_the_source(scene: dict) -> None:
    result = scene["result"]
    printed = result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    logged = {line["quarantine"] for line in lines if line["event"] == "quarantined"}
    assert logged == set(_reasons(scene["root"]))
    for path in [*scene["files"], scene["single"]]:
        assert path.name not in printed
    assert PATIENT.patient_id not in printed and str(scene["incoming"]) not in printed


def test_the_audit_records_do_not_name_the_source(scene: dict) -> None:
    records = scene["root"] / "out-records"
    text = "".join(path.read_text() for path in (records / "audit").glob("*.jsonl"))
    text += (records / "journal.jsonl").read_text() + (records / "summary.json").read_text()
    for path in [*scene["files"], scene["single"]]:
        assert path.name not in text
    assert PATIENT.patient_id not in text
