"""A data manager's run quarantines a patient missing from the case-number lookup, an annotation
file with a field that may hold identity, and a file that is no image.  A rerun says the quarantine
still holds them (exit 3), and each run keeps its own summary.  They add the patient to the lookup,
remove the field from the quarantined annotation file, and run `deid run --from-quarantine`: what is
released now leaves the quarantine, into the same output and with the same bytes a run with the right
lookup gives; the file that is no image stays, with its new reason and the name of its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import deid, run_args, tree

from deid.synthetic import four_phase_ct, make_patient, oddities, write_datasets
from deid.synthetic.sidecars import write_voc

PATIENTS = [make_patient(0), make_patient(1)]


def _entries(quarantine: Path) -> dict[str, dict]:
    """Quarantine entry name -> its reason.json."""
    return {entry.name: json.loads((entry / "reason.json").read_text()) for entry in sorted(quarantine.iterdir())}


def _released(out: Path) -> dict[str, bytes]:
    return {name: data for name, data in tree(out).items() if name.endswith(".dcm")}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("correct")
    incoming = root / "incoming"
    for patient in PATIENTS:
        write_datasets(four_phase_ct(patient, slices=1, size=16)["N"], incoming / patient.patient_id)
    image = four_phase_ct(PATIENTS[0], slices=1, size=16)["N"][0]
    write_voc(incoming / "boxes", image, PATIENTS[0], extra=True)  # an <owner> naming the patient
    oddities.not_dicom(incoming / "odd")
    partial = root / "partial.csv"
    partial.write_text(f"patient_id,case_number\n{PATIENTS[0].patient_id},622\n")
    full = root / "full.csv"
    full.write_text(f"patient_id,case_number\n{PATIENTS[0].patient_id},622\n{PATIENTS[1].patient_id},623\n")
    out = root / "out"
    first = deid(*run_args(incoming, out, key_file, "--lookup", partial))
    rerun = deid(*run_args(incoming, out, key_file, "--lookup", partial))
    quarantine, records = root / "out-quarantine", root / "out-records"
    before = _entries(quarantine)
    # the corrections: the lookup, and the annotation file in the quarantine
    (voc_entry,) = [name for name, reason in before.items() if reason["code"] == "sidecar-unknown-field"]
    original = quarantine / voc_entry / "original.xml"
    original.write_text("".join(line for line in original.read_text().splitlines(keepends=True)
                                if "owner>" not in line and PATIENTS[0].display_name not in line))
    again = deid("run", "--from-quarantine", quarantine, "--out", out, "--key-file", key_file,
                 "--lookup", full, "--no-progress")
    reference = deid(*run_args(incoming, root / "reference", key_file, "--lookup", full))
    assert reference.returncode == 3, reference.stderr  # the annotation file and the non-image
    return {"root": root, "incoming": incoming, "out": out, "quarantine": quarantine, "records": records,
            "first": first, "rerun": rerun, "before": before, "again": again, "voc_entry": voc_entry,
            "reference": root / "reference"}


def test_the_first_run_quarantines_three_kinds(scene: dict) -> None:
    assert scene["first"].returncode == 3, scene["first"].stderr
    codes = sorted(reason["code"] for reason in scene["before"].values())
    assert codes == ["not-dicom", "patient-not-in-lookup", "sidecar-unknown-field"]


def test_a_rerun_says_what_waits_in_the_quarantine_and_exits_3(scene: dict) -> None:
    rerun = scene["rerun"]
    assert rerun.returncode == 3, rerun.stderr
    assert "0 written" in rerun.stdout and "0 quarantined" in rerun.stdout
    assert f"3 objects wait in the quarantine {scene['quarantine']} from earlier runs" in rerun.stdout
    assert "--from-quarantine" in rerun.stdout


def test_each_run_keeps_its_summary(scene: dict) -> None:
    records = scene["records"]
    kept = sorted((records / "summaries").glob("*.json"))
    assert len(kept) == 3  # the first run, the rerun, the release from the quarantine
    summaries = [json.loads(path.read_text()) for path in kept]
    assert {summary["run_id"] + ".json" for summary in summaries} == {path.name for path in kept}
    latest = json.loads((records / "summary.json").read_text())
    assert latest["from_quarantine"] and latest in summaries
    rerun = next(s for s in summaries if not s["from_quarantine"] and s["skipped"] == s["total"])
    assert (rerun["quarantine_waiting"], rerun["quarantine_earlier"]) == (3, 3)


def test_what_is_released_now_leaves_the_quarantine(scene: dict) -> None:
    again = scene["again"]
    assert again.returncode == 3, again.stderr  # the file that is no image still waits
    assert "3 originals in the quarantine: 2 written" in again.stdout
    assert "2 left the quarantine" in again.stdout
    after = _entries(scene["quarantine"])
    assert [reason["code"] for reason in after.values()] == ["not-dicom"]
    assert set(after) < set(scene["before"])  # the same entry, still in place
    latest = json.loads((scene["records"] / "summary.json").read_text())
    assert (latest["left_quarantine"], latest["quarantine_waiting"]) == (2, 1)


def test_the_still_refused_entry_keeps_its_reason_and_the_name_of_its_source(scene: dict) -> None:
    (reason,) = _entries(scene["quarantine"]).values()
    (odd,) = (scene["incoming"] / "odd").iterdir()
    assert reason["source"] == f"odd/{odd.name}"  # relative to the SRC the first run was given
    assert "message" in reason and reason["stage"] == "read"


def test_the_output_is_what_a_run_with_the_right_lookup_gives(scene: dict) -> None:
    released = _released(scene["out"])
    assert released == _released(scene["reference"])
    assert len(released) == 2  # both patients' images


def test_the_corrected_annotation_file_is_released_beside_its_image(scene: dict) -> None:
    (voc,) = (scene["out"] / "annotations").iterdir()
    text = voc.read_text()
    assert PATIENTS[0].display_name not in text and PATIENTS[0].patient_id not in text
    assert "<owner>" not in text


def test_a_second_release_from_the_quarantine_changes_nothing(scene: dict, key_file: Path) -> None:
    out = scene["out"]
    before = tree(out)
    result = deid("run", "--from-quarantine", scene["quarantine"], "--out", out, "--key-file", key_file,
                  "--no-progress")
    assert result.returncode == 3, result.stderr
    assert "1 originals in the quarantine: 0 written" in result.stdout  # tried again, still refused
    assert tree(out) == before
    assert [reason["code"] for reason in _entries(scene["quarantine"]).values()] == ["not-dicom"]


@pytest.mark.parametrize("own", [False, True], ids=["elsewhere", "as-its-quarantine"])
def test_the_quarantine_as_an_input_folder_is_refused_saying_what_to_do(scene: dict, key_file: Path,
                                                                        own: bool) -> None:
    extra = ["--quarantine", scene["quarantine"]] if own else []
    result = deid(*run_args(scene["quarantine"], scene["root"] / "elsewhere", key_file, *extra))
    assert result.returncode == 2
    assert f"--from-quarantine {scene['quarantine']}" in result.stderr and "Traceback" not in result.stderr
    assert not (scene["root"] / "elsewhere").exists()



def test_a_run_over_the_source_that_releases_a_quarantined_object_removes_its_entry(tmp_path: Path,
                                                                                   key_file: Path) -> None:
    incoming = tmp_path / "incoming"
    write_datasets(four_phase_ct(PATIENTS[0], slices=1, size=16)["N"], incoming)
    out = tmp_path / "out"
    small = deid(*run_args(incoming, out, key_file, "--max-object-size", "100"))
    assert small.returncode == 3 and "too-large 1" in small.stdout
    assert len(_entries(tmp_path / "out-quarantine")) == 1
    result = deid(*run_args(incoming, out, key_file))  # too-large is tried again by every run
    assert result.returncode == 0, result.stdout + result.stderr  # the whole output is released now
    assert "1 written" in result.stdout and "1 left the quarantine" in result.stdout
    assert _entries(tmp_path / "out-quarantine") == {}
