"""The fused PET/CT screenshot builder: text really burned into known boxes, every layout valid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import peers
import pytest
from pydicom.uid import (
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
)

from deid.synthetic import write_dataset
from deid.synthetic.fused import burned_in_boxes, fused_pet_ct_screenshot, ink_mask, lung_patient
from deid.synthetic.glyphs import text_mask


def test_glyphs_are_real_text() -> None:
    mask = text_mask("A1")
    assert mask.shape == (7, 11) and mask[:, 5].sum() == 0  # one blank column between letters
    assert mask[3, :5].all()  # the bar of the A
    assert not np.array_equal(text_mask("B"), text_mask("8"))


def test_the_text_lies_inside_the_boxes_and_names_the_patient() -> None:
    patient = lung_patient("B", 3)
    ink = ink_mask(patient)
    boxes = np.zeros_like(ink)
    for x, y, width, height in burned_in_boxes(512):
        boxes[y : y + height, x : x + width] = True
    assert ink.sum() > 500 and not (ink & ~boxes).any()
    name = text_mask(patient.display_name, 2)
    assert np.array_equal(ink[4 : 4 + name.shape[0], 4 : 4 + name.shape[1]], name)
    image = fused_pet_ct_screenshot(patient).pixel_array
    assert (image[ink] == 255).all() and (image[~ink] < 255).all()


@pytest.mark.parametrize(("layout", "sop_class"), [
    ({}, SecondaryCaptureImageStorage),
    ({"frames": 2}, MultiFrameTrueColorSecondaryCaptureImageStorage),
    ({"frames": 2, "samples": 1}, MultiFrameGrayscaleByteSecondaryCaptureImageStorage),
    ({"frames": 2, "samples": 1, "bits": 16}, MultiFrameGrayscaleWordSecondaryCaptureImageStorage),
])
def test_each_layout_has_its_sop_class_and_pixel_size(layout: dict, sop_class: str) -> None:
    ds = fused_pet_ct_screenshot(size=32, **layout)
    assert ds.SOPClassUID == sop_class
    frames = layout.get("frames", 1)
    assert len(ds.PixelData) == 32 * 32 * frames * ds.SamplesPerPixel * ds.BitsAllocated // 8
    assert ds.pixel_array.shape[:1] == ((frames,) if frames > 1 else (32,))


def test_lung_patients_carry_their_group_letter() -> None:
    assert lung_patient("E", 7).patient_id == "Lung_Dx-E0007"
    assert lung_patient("A", 1).name != lung_patient("B", 1).name
    with pytest.raises(ValueError):
        lung_patient("C", 1)


def test_dciodvfy_finds_no_error_in_the_screenshot(tmp_path: Path) -> None:
    path = write_dataset(fused_pet_ct_screenshot(size=64), tmp_path / "fused.dcm")
    assert peers.dciodvfy_errors(path) == []
