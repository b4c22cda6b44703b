"""A user gives the case numbers of the patients in a CSV (--lookup): Patient's Name becomes the
case number; a patient missing from the CSV is quarantined, not released under a made-up number."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from support import deid, phi_found, run_args

from deid.synthetic import make_patient, write_sample_study


def test_case_numbers_come_from_the_lookup(tmp_path: Path, key_file: Path) -> None:
    known, unknown = make_patient(0), make_patient(5)
    incoming = tmp_path / "incoming"
    released = write_sample_study(incoming, known, slices=2, size=16)
    held = write_sample_study(incoming, unknown, slices=1, size=16)
    lookup = tmp_path / "cases.csv"
    lookup.write_text(f"patient_id,case_number\n{known.patient_id},622\nZ999999999,623\n")

    result = deid(*run_args(incoming, tmp_path / "out", key_file, "--lookup", lookup))
    assert result.returncode == 3, result.stderr
    assert f"{len(released)} written" in result.stdout
    assert f"patient-not-in-lookup {len(held)}" in result.stdout

    outputs = [pydicom.dcmread(p, stop_before_pixels=True) for p in (tmp_path / "out").rglob("*.dcm")]
    assert len(outputs) == len(released)
    assert {str(ds.PatientName) for ds in outputs} == {"622"}
    for path in (tmp_path / "out").rglob("*.dcm"):
        data = path.read_bytes()
        assert phi_found(data, known) == [] and phi_found(data, unknown) == []

    reasons = [json.loads(p.read_text()) for p in (tmp_path / "out-quarantine").rglob("reason.json")]
    assert len(reasons) == len(held)
    assert {(r["code"], r["path"]) for r in reasons} == {("patient-not-in-lookup", "(0010,0020)")}
    # "source" names the input file (the quarantine is a PHI zone); the rest holds no identity
    assert all(phi_found(json.dumps({k: v for k, v in r.items() if k != "source"}), unknown) == []
               for r in reasons)
