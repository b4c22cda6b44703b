"""A data manager reviews a release: `deid run`, then `deid report` on its records and `deid verify`
on its output (alone, then with the records and key).

The input has three things to catch: an RT Structure Set whose kept label is the patient's name (it
goes out replaced by the placeholder, and the report counts the replacement), a CT
slice the RTSS references that is corrupt (quarantined, so the reference dangles), and a screenshot
that may show burned-in text (quarantined).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support import SIZE, SLICES, deid, phi_found, run_args

from deid.synthetic import four_phase_ct, oddities, rtss, write_datasets


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, patient, key_file: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("review")
    source = folder / "incoming" / "CHEN^MEI-LING"
    phases = four_phase_ct(patient, slices=SLICES, size=SIZE)
    structure_set = rtss(patient, phases["P"], label=patient.display_name)
    for phase, images in phases.items():
        write_datasets(images, source, [f"CT_{phase}_{i:03d}.dcm" for i in range(len(images))])
    write_datasets([structure_set], source, ["RTSS.dcm"])
    corrupt = source / "CT_P_001.dcm"
    corrupt.write_bytes(corrupt.read_bytes()[:-100])  # cut inside the pixel data
    oddities.secondary_capture(source.parent / "screenshots", patient, burned_in=None)
    out, records = folder / "out", folder / "records"
    result = deid(*run_args(source.parent, out, key_file, "--records", records))
    assert result.returncode == 3, result.stdout + result.stderr
    report = deid("report", records, "--out", folder / "report")
    assert report.returncode == 0, report.stderr
    assert str(folder / "report" / "report.html") in report.stdout
    return {"out": out, "records": records, "report": folder / "report", "corrupt_uid": phases["P"][1].SOPInstanceUID}


def test_the_report_counts_what_went_out_and_what_did_not(release) -> None:
    data = json.loads((release["report"] / "report.json").read_text())
    totals = data["totals"]
    assert totals["objects_released"] == 4 * SLICES  # 4 x SLICES CT - 1 corrupt + 1 RTSS
    assert (totals["patients"], totals["studies"], totals["series"]) == (1, 1, 5)
    assert data["modalities"] == {"CT": 4 * SLICES - 1, "RTSTRUCT": 1}
    assert {row["code"]: row["count"] for row in data["quarantine"]} == {
        "unreadable": 1, "burned-in-annotation-risk": 1}
    assert data["outcomes"] == {"written": 4 * SLICES, "quarantined": 2}
    with open(release["report"] / "counts.csv", encoding="utf-8") as handle:
        counts = {(r["table"], r["key"]): int(r["count"]) for r in csv.DictReader(handle)}
    assert counts[("modality", "CT")] == 4 * SLICES - 1
    assert counts[("quarantine_reason", "unreadable")] == 1


def test_the_label_naming_the_patient_is_replaced_and_counted(release, patient) -> None:
    data = json.loads((release["report"] / "report.json").read_text())
    assert data["review"]["flagged"] == []
    assert data["review"]["replaced"] == [{"attribute": "StructureSetLabel", "replaced": 1, "objects": 1}]
    assert data["totals"]["identity_values_replaced"] == 1
    values = {a["attribute"]: {r["value"]: r["objects"] for r in a["values"]} for a in data["review"]["attributes"]}
    assert values["StructureSetLabel"] == {"[removed]": 1}
    assert values["SeriesDescription"]["Pre. Phas 5.0 B31f"] == SLICES
    assert values["SeriesDescription"]["Port. Phas 5.0 B31f"] == SLICES - 1
    page = (release["report"] / "report.html").read_text()
    assert 'id="replaced"' in page and patient.display_name not in page
    summary = json.loads((release["records"] / "summary.json").read_text())
    assert summary["text_replaced"] == {"StructureSetLabel": 1}


def test_the_reference_to_the_quarantined_slice_dangles(release) -> None:
    data = json.loads((release["report"] / "report.json").read_text())
    (study,) = data["dangling"]
    refs = study["references"]
    assert {ref["modality"] for ref in refs} == {"RTSTRUCT", "CT"}  # the RTSS and the neighbour slices
    assert {ref["problem"] for ref in refs} == {"not released"}
    assert any(ref["path"].startswith("(3006,0010)[0].(3006,0012)[0].(3006,0014)[0].(3006,0016)") for ref in refs)
    assert release["corrupt_uid"] not in json.dumps(data)  # the released UID is listed, not the original


def test_nothing_carries_identity(release, patient) -> None:
    for path in [*release["report"].iterdir(), *(release["records"] / "audit").iterdir(),
                 release["records"] / "summary.json"]:
        assert phi_found(path.read_bytes(), patient) == [], path.name


def test_verify_alone_finds_the_broken_references(release) -> None:
    result = deid("verify", release["out"])
    assert result.returncode == 4
    codes = {line.split("\t")[2] for line in result.stdout.splitlines()}
    assert codes == {"dangling-reference"}


def test_verify_with_the_map_finds_no_original_value(release, key_file: Path, patient) -> None:
    result = deid("verify", release["out"], "--records", release["records"], "--key-file", key_file)
    assert result.returncode == 4, result.stderr
    findings = {tuple(line.split("\t")[1:]) for line in result.stdout.splitlines()}
    assert {code for _, code in findings} == {"dangling-reference"}  # the label went out replaced
    assert patient.display_name not in result.stdout + result.stderr


def test_verify_with_a_wrong_key_stops_with_a_usage_error(release, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    other.write_text("ab" * 32 + "\n")
    other.chmod(0o600)
    result = deid("verify", release["out"], "--records", release["records"], "--key-file", other)
    assert result.returncode == 2 and "does not open" in result.stderr


def test_the_builders_audit_lines_have_the_shape_of_a_real_runs(release) -> None:
    """deid.synthetic.audit_records (used by report tests and the benchmark) must not drift from the trail."""
    from deid.synthetic.audit_records import release_lines

    path = min((release["records"] / "audit").glob("*.jsonl"))  # the first run's file
    real = [json.loads(line) for line in path.read_text().splitlines()]
    built = list(release_lines(1, slices=1))
    for outcome in ("written", "quarantined"):
        real_line = next(line for line in real if line["outcome"] == outcome)
        built_line = next(line for line in built if line["outcome"] == outcome)
        assert set(built_line) <= set(real_line), outcome
        for key, value in built_line.items():
            assert type(value) is type(real_line[key]) or real_line[key] is None or value is None, key
    rtss_line = next(line for line in real if line["modality"] == "RTSTRUCT")
    assert {ref["kind"] for ref in rtss_line["references"]} >= {"instance", "series", "frame_of_reference"}
    assert set(rtss_line["kept_text"]) >= {"StructureSetLabel", "ROIName", "SeriesDescription"}


def test_a_rerun_adds_skips_but_no_objects(release, key_file: Path, tmp_path: Path) -> None:
    source = release["out"].parent / "incoming"
    rerun = deid(*run_args(source, release["out"], key_file, "--records", release["records"]))
    assert rerun.returncode in (0, 3), rerun.stderr
    assert deid("report", release["records"], "--out", tmp_path / "again").returncode == 0
    before = json.loads((release["report"] / "report.json").read_text())
    after = json.loads((tmp_path / "again" / "report.json").read_text())
    assert after["totals"]["objects_released"] == before["totals"]["objects_released"]
    assert after["outcomes"]["skipped"] >= 4 * SLICES and len(after["runs"]) == 2
    assert after["dangling"] == before["dangling"]
