"""A user releases Lung-PET-CT-Dx fused PET/CT screenshots with `deid run --profile lung-pet-ct-dx`:
the burned-in name and ID are blanked, the rest of the pixels is unchanged (a compressed one is
decoded, blanked and written again in its own lossless syntax), and a screenshot the profile has no
region for stays in quarantine with a reason a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import peers
import pydicom
import pytest
from pydicom.uid import RLELossless
from support import deid, phi_found, run_args, tree

from deid.synthetic import write_dataset
from deid.synthetic.fused import burned_in_boxes, fused_pet_ct_screenshot, ink_mask, lung_patient

SIZE = 512  # the size the profile's region is written for


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("fused")
    patient = lung_patient("A", 12)
    incoming = root / "incoming" / f"{patient.patient_id} {patient.display_name}"
    fused = write_dataset(fused_pet_ct_screenshot(patient), incoming / "fused.dcm")
    unknown_size = write_dataset(fused_pet_ct_screenshot(patient, size=256), incoming / "fused_256.dcm")
    rle = fused_pet_ct_screenshot(patient, rle=True)
    rle.SOPInstanceUID = rle.file_meta.MediaStorageSOPInstanceUID = rle.SOPInstanceUID + ".2"  # another grab
    compressed = write_dataset(rle, incoming / "fused_rle.dcm")
    result = deid(*run_args(root / "incoming", root / "out", key_file, "--profile", "lung-pet-ct-dx"))
    outputs = sorted((root / "out").rglob("*.dcm"),
                     key=lambda p: pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    return {"patient": patient, "fused": fused, "unknown_size": unknown_size, "compressed": compressed,
            "result": result, "out": root / "out", "outputs": outputs, "quarantine": root / "out-quarantine"}


def _box_mask() -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    for x, y, width, height in burned_in_boxes(SIZE):
        mask[y : y + height, x : x + width] = True
    return mask


def test_two_screenshots_are_released_one_is_quarantined(scene) -> None:
    result = scene["result"]
    assert result.returncode == 3, result.stderr
    assert "3 objects: 2 written" in result.stdout and "1 quarantined" in result.stdout
    assert len(scene["outputs"]) == 2


def test_the_text_is_gone_and_every_other_pixel_is_byte_identical(scene) -> None:
    source, output = pydicom.dcmread(scene["fused"]), pydicom.dcmread(scene["outputs"][0])
    assert output.BurnedInAnnotation == "NO"
    before = np.frombuffer(source.PixelData, np.uint8).reshape(SIZE, SIZE, 3)
    after = np.frombuffer(output.PixelData, np.uint8).reshape(SIZE, SIZE, 3)
    mask = _box_mask()
    assert (before[ink_mask(scene["patient"])] == 255).all()  # the name and ID were burned in
    assert (after[mask] == 0).all()
    assert before[~mask].tobytes() == after[~mask].tobytes()
    assert len(output.PixelData) == len(source.PixelData)
    assert output["PixelData"].VR == source["PixelData"].VR
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration",
                    "BitsAllocated", "BitsStored"):
        assert output[keyword].value == source[keyword].value


def test_no_identity_reaches_the_output(scene) -> None:
    for relative, data in tree(scene["out"]).items():
        assert phi_found(relative, scene["patient"]) == []
        assert phi_found(data, scene["patient"]) == []
    output = pydicom.dcmread(scene["outputs"][0], stop_before_pixels=True)
    assert output.PatientID.startswith("A-") and output.PatientIdentityRemoved == "YES"


def test_the_summary_counts_the_blanked_region(scene) -> None:
    summary = json.loads((scene["out"].parent / "out-records" / "summary.json").read_text())
    assert summary["actions"]["blank_pixel_region"] == 2
    assert summary["actions"]["pixels_reencoded"] == 1


def test_the_compressed_screenshot_is_blanked_and_stays_rle(scene) -> None:
    source, output = pydicom.dcmread(scene["compressed"]), pydicom.dcmread(scene["outputs"][1])
    assert output.file_meta.TransferSyntaxUID == RLELossless and output.BurnedInAnnotation == "NO"
    mask = _box_mask()
    assert (output.pixel_array[mask] == 0).all()
    assert output.pixel_array[~mask].tobytes() == source.pixel_array[~mask].tobytes()


def test_screenshots_that_cannot_be_blanked_stay_quarantined_with_what_to_do(scene) -> None:
    reasons = {}
    for entry in scene["quarantine"].iterdir():
        reason = json.loads((entry / "reason.json").read_text())
        reasons[(entry / "original.dcm").read_bytes()] = reason
        # "source" names the input file (the quarantine is a PHI zone); the rest holds no identity
        assert phi_found(json.dumps({k: v for k, v in reason.items() if k != "source"}), scene["patient"]) == []
    unknown = reasons[scene["unknown_size"].read_bytes()]
    assert unknown["code"] == "burned-in-annotation-risk" and unknown["path"] == "(0028,0301)"
    assert "256x256 pixels" in unknown["message"] and "pixels.regions" in unknown["message"]
    assert len(reasons) == 1


def test_dciodvfy_finds_no_new_error(scene) -> None:
    before = set(peers.dciodvfy_errors(scene["fused"]))
    after = peers.dciodvfy_errors(scene["outputs"][0])
    assert [line for line in after if line not in before] == []
    assert peers.dcmdump_ok(scene["outputs"][0])
