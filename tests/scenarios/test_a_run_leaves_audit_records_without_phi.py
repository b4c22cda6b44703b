"""A user runs `deid run --workers 2` over PHI-laden studies and odd files: the records folder (outside the
output) gets one audit line per object, none holding a planted value; a re-run adds skip lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import deid, phi_found, run_args

from deid.audit.reid import read_map
from deid.synthetic import make_patient, oddities, write_sample_study

PATIENTS = (make_patient(0), make_patient(1))


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> tuple[Path, Path, dict, str]:
    base = tmp_path_factory.mktemp("auditrun")
    source = base / "incoming"
    write_sample_study(source, PATIENTS[0], slices=2, size=16)
    write_sample_study(source, PATIENTS[1], slices=1, size=16)
    odd = source / "odd"
    oddities.not_dicom(odd)
    oddities.truncated_dicom(odd, PATIENTS[0])
    oddities.secondary_capture(odd, PATIENTS[0])
    oddities.ct_bad_date(odd, PATIENTS[1])
    oddities.ct_deep_sequences(odd, PATIENTS[1])
    out, records = base / "out", base / "records"
    result = deid(*run_args(source, out, key_file, "--records", records, "--workers", 2))
    assert result.returncode == 3, result.stderr  # some quarantined
    summary = json.loads((records / "summary.json").read_text())
    return out, records, summary, str(source)


def _lines(records: Path) -> list[dict]:
    lines = []
    for path in sorted((records / "audit").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines


def test_every_object_has_one_line(release) -> None:
    out, records, summary, _ = release
    lines = _lines(records)
    assert len(lines) == summary["total"]
    assert sum(line["outcome"] == "written" for line in lines) == summary["written"]
    quarantined = [line for line in lines if line["outcome"] == "quarantined"]
    assert len(quarantined) == summary["quarantined"] == 4
    assert {line["reason"] for line in quarantined} == {"not-dicom", "unreadable", "burned-in-annotation-risk",
                                                        "rule-not-applicable"}
    assert {line["run_id"] for line in lines} == {summary["run_id"]}
    for line in lines:
        if line["outcome"] == "written":
            assert (out / line["output"]).is_file()
            assert line["sop_uid"] and line["patient_id"] and line["actions"]
            assert line["profile"]["sha256"] == summary["profile_sha256"]


def test_no_line_holds_a_planted_value(release) -> None:
    _, records, _, source = release
    for path in (records / "audit").glob("*.jsonl"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for patient in PATIENTS:
                assert phi_found(line, patient) == [], f"{path.name} line {number}"
                for date in (patient.birth_date, *patient.date_values()):
                    assert date not in line, f"{path.name} line {number}"
            assert source not in line


def test_the_map_holds_each_released_object_once(release, key) -> None:
    _, records, summary, _ = release
    entries = read_map(records, key).entries
    assert len(entries) == summary["written"]
    by_id = {entry["original"]["patient_id"] for entry in entries}
    assert by_id == {patient.patient_id for patient in PATIENTS}


def test_records_are_outside_the_output_and_owner_only(release) -> None:
    out, records, _, _ = release
    assert out not in records.parents and records not in out.parents
    assert {p.suffix for p in out.rglob("*") if p.is_file()} == {".dcm"}
    for path in [records, *records.rglob("*")]:  # the released index's SQLite files among them
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    for path in records.glob("reid/*"):
        for patient in PATIENTS:
            assert phi_found(path.read_bytes(), patient) == []


def test_a_rerun_records_each_object_as_skipped(release, key_file: Path) -> None:
    out, records, summary, source = release
    before = _lines(records)
    result = deid(*run_args(Path(source), out, key_file, "--records", records))
    assert result.returncode == 3, result.stderr  # the first run's quarantined objects still wait
    first = {line["run_id"] for line in before}
    new = [line for line in _lines(records) if line["run_id"] not in first]
    assert [line["outcome"] for line in new] == ["skipped"] * summary["total"]
    written = {line["sop_uid"] for line in before if line["outcome"] == "written"}
    assert {line["sop_uid"] for line in new if line["output"]} == written


def test_the_records_hold_only_closed_files(release) -> None:
    """The released index is closed when the run ends (its write-ahead log folded in), not left to
    the process's exit: the records folder holds its files and no SQLite side file."""
    _out, records, _summary, _ = release
    assert (records / "released.sqlite").is_file()
    assert sorted(p.name for p in records.glob("released.sqlite-*")) == []
