"""A user releases Lung-PET-CT-Dx subjects with `deid run --profile lung-pet-ct-dx`: each released
Patient ID keeps its diagnosis letter (A, B, E, G) and nothing else, the same in every object and
every run; a subject whose ID has no letter is not released."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pydicom
import pytest
from support import deid, phi_found, run_args, tree

from deid.synthetic import four_phase_ct, rtss, write_datasets
from deid.synthetic.fused import lung_patient

GROUPS = "ABEG"


def _write_subject(folder: Path, patient, patient_id: str | None = None) -> list[Path]:
    images = four_phase_ct(patient, slices=2, size=16)["P"]
    objects = images + [rtss(patient, images)]
    if patient_id is not None:
        for ds in objects:
            ds.PatientID = patient_id
    names = [f"{i}.dcm" for i in range(len(objects))]
    return write_datasets(objects, folder / f"{patient.patient_id} {patient.display_name}", names)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("lung")
    patients = {group: lung_patient(group, 30 + n) for n, group in enumerate(GROUPS)}
    for group, patient in patients.items():
        _write_subject(root / "part1" if group in "AB" else root / "part2", patient)
    stray = lung_patient("A", 99)
    _write_subject(root / "part2", stray, patient_id="Lung_Dx-99")  # no group letter
    together = deid(*run_args([root / "part1", root / "part2"], root / "out", key_file,
                              "--profile", "lung-pet-ct-dx"))
    split = [deid(*run_args(root / part, root / "split", key_file, "--profile", "lung-pet-ct-dx",
                            "--records", root / f"records-{part}"))
             for part in ("part2", "part1")]
    return {"root": root, "patients": patients, "stray": stray, "together": together, "split": split}


def _released(out: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(out.rglob("*.dcm"))]


def test_every_subject_with_a_letter_is_released_the_stray_one_is_not(scene) -> None:
    result = scene["together"]
    assert result.returncode == 3, result.stderr
    assert "12 written" in result.stdout and "3 quarantined" in result.stdout
    assert "label-not-found 3" in result.stdout
    quarantine = scene["root"] / "out-quarantine"
    for entry in quarantine.iterdir():
        reason = json.loads((entry / "reason.json").read_text())
        assert reason["code"] == "label-not-found" and reason["path"] == "(0010,0020)"
        assert "Lung_Dx-99" not in json.dumps(reason)


def test_each_released_id_is_its_letter_and_a_keyed_value(scene) -> None:
    by_id: dict[str, set[str]] = {}
    for ds in _released(scene["root"] / "out"):
        assert re.fullmatch(r"[ABEG]-[0-9a-f]{14}", ds.PatientID), ds.PatientID
        by_id.setdefault(ds.PatientID, set()).add(ds.Modality)
    assert sorted(pid[0] for pid in by_id) == list(GROUPS)
    assert all(modalities == {"CT", "RTSTRUCT"} for modalities in by_id.values())  # the RTSS agrees
    folders = {p.name for p in (scene["root"] / "out").iterdir()}
    assert folders == set(by_id)


def test_nothing_else_of_the_original_id_or_name_is_released(scene) -> None:
    for relative, data in tree(scene["root"] / "out").items():
        for patient in scene["patients"].values():
            assert phi_found(relative, patient) == [] and phi_found(data, patient) == []
            number = patient.patient_id.split("-")[-1]
            assert number.encode() not in data, relative


def test_split_runs_release_the_same_ids_and_files(scene) -> None:
    # the second run exits 3 too: the stray subject the first run quarantined still waits there
    assert [r.returncode for r in scene["split"]] == [3, 3], [r.stderr for r in scene["split"]]
    assert "from earlier runs" in scene["split"][1].stdout
    assert tree(scene["root"] / "split") == tree(scene["root"] / "out")
