"""A user's input holds annotation files deid cannot de-identify (an unknown format, a field that may
hold identity, a file that names no image): they go to the quarantine with a reason, never to the
output, and the images and the known side-cars are still released."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import deid, phi_found, run_args, tree

from deid.synthetic import four_phase_ct, write_datasets
from deid.synthetic.fused import lung_patient
from deid.synthetic.sidecars import odd_sidecars, write_voc


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("odd-sidecars")
    patient = lung_patient("B", 8)
    images = four_phase_ct(patient, slices=2, size=32)["N"]
    folder = root / "incoming" / patient.patient_id
    write_datasets(images, folder)
    good = write_voc(folder, images[0], patient)
    bad = odd_sidecars(folder / "extra", images[1], patient)
    (folder / "notes.txt").write_text(f"{patient.name}\n")  # not a side-car kind: not-dicom
    result = deid(*run_args(root / "incoming", root / "out", key_file, "--profile", "lung-pet-ct-dx"))
    return {"root": root, "patient": patient, "good": good, "bad": bad, "result": result}


def _entries(quarantine: Path) -> dict[bytes, tuple[dict, str]]:
    found = {}
    for entry in quarantine.iterdir():
        (original,) = [p for p in entry.iterdir() if p.name.startswith("original")]
        found[original.read_bytes()] = (json.loads((entry / "reason.json").read_text()), original.name)
    return found


def test_the_run_releases_the_rest_and_reports_the_quarantine(scene) -> None:
    result = scene["result"]
    assert result.returncode == 3, result.stderr
    expected = len(scene["bad"]) + 1
    assert f"3 written, 0 skipped (already done), {expected} quarantined" in result.stdout


def test_each_odd_sidecar_has_its_reason_and_is_kept_as_it_came(scene) -> None:
    entries = _entries(scene["root"] / "out-quarantine")
    for path, code in scene["bad"].items():
        reason, name = entries[path.read_bytes()]
        assert reason["code"] == code, (path.name, reason)
        assert reason["stage"] == "sidecar" and name == "original" + path.suffix
        assert "side-car" in reason["message"] or "UID" in reason["message"]
        # the source's name (relative to SRC) may carry identity: the quarantine is a PHI zone
        assert reason.pop("source") == str(path.relative_to(scene["root"] / "incoming"))
        assert phi_found(json.dumps(reason), scene["patient"]) == [], path.name
    assert sum(r["code"] == "not-dicom" for r, _ in entries.values()) == 1


def test_only_the_known_sidecar_reaches_the_output(scene) -> None:
    files = tree(scene["root"] / "out")
    annotations = [name for name in files if name.startswith("annotations/")]
    assert len(annotations) == 1 and annotations[0].endswith(".xml")
    for relative, data in files.items():
        assert phi_found(relative, scene["patient"]) == [] and phi_found(data, scene["patient"]) == []


def test_no_log_line_carries_identity(scene) -> None:
    result = scene["result"]
    assert phi_found(result.stdout + result.stderr, scene["patient"]) == []
