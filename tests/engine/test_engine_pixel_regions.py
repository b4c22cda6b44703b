"""Pixel regions: the profile's boxes are blanked in native Pixel Data of every layout and frame,
the rest of Pixel Data stays byte for byte, and what cannot be blanked is quarantined."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless
from support import release, to_bytes

from deid.errors import ObjectError
from deid.profile.loader import load_profile
from deid.profile.model import Profile
from deid.synthetic import four_phase_ct, oddities
from deid.synthetic.fused import (
    burned_in_boxes,
    fused_pet_ct_screenshot,
    ink_mask,
    jpeg_baseline,
    lung_patient,
)

SIZE = 64


def _profile(tmp_path: Path, regions: str, name: str = "regions") -> Profile:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nextends: vghtpe\npixels:\n  regions:\n{regions}")
    return load_profile(path)


def _region(name: str, match: str, boxes: list[tuple[int, int, int, int]]) -> str:
    blank = ", ".join(f"[{x}, {y}, {w}, {h}]" for x, y, w, h in boxes)
    return f"    - name: {name}\n      match: {{{match}}}\n      blank: [{blank}]\n"


@pytest.fixture
def sc_profile(tmp_path: Path) -> Profile:
    return _profile(tmp_path, _region("fused", f"capture_model: syngo.via, rows: {SIZE}, columns: {SIZE}",
                                      burned_in_boxes(SIZE)))


def _mask(size: int, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    for x, y, w, h in boxes:
        mask[y : y + h, x : x + w] = True
    return mask


def _frames(ds: pydicom.Dataset) -> np.ndarray:
    """Pixels as (frames, rows, columns, samples), decoded by pydicom (not by deid)."""
    array = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.SamplesPerPixel)
    return array.reshape(frames, ds.Rows, ds.Columns, samples)


LAYOUTS = {
    "rgb": {},
    "rgb planar, 2 frames": {"planar": 1, "frames": 2},
    "rgb 3 frames": {"frames": 3},
    "grey 8-bit": {"samples": 1},
    "grey 16-bit": {"samples": 1, "bits": 16},
    "grey 16-bit signed, 2 frames": {"samples": 1, "bits": 16, "signed": True, "frames": 2},
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_only_the_boxes_change_in_every_layout_and_frame(sc_profile: Profile, key, layout: str) -> None:
    patient = lung_patient("B", 2)
    source = fused_pet_ct_screenshot(patient, size=SIZE, **LAYOUTS[layout])
    data = to_bytes(source)
    ds, _ = release(data, sc_profile, key)
    before, after = _frames(pydicom.dcmread(BytesIO(data))), _frames(ds)
    mask = _mask(SIZE, burned_in_boxes(SIZE))
    assert (before[:, ink_mask(patient, SIZE)] != 0).all()  # the text was there
    assert np.array_equal(after[:, ~mask], before[:, ~mask])
    signed = LAYOUTS[layout].get("signed", False)
    assert (after[:, mask] == (-2048 if signed else 0)).all()  # black, in every frame and sample
    assert ds.BurnedInAnnotation == "NO"
    assert len(ds.PixelData) == len(source.PixelData)


def test_pixel_data_bytes_outside_the_boxes_are_identical(sc_profile: Profile, key) -> None:
    source = fused_pet_ct_screenshot(lung_patient("A", 4), size=SIZE, planar=1)
    ds, _ = release(source, sc_profile, key)
    old, new = np.frombuffer(source.PixelData, np.uint8), np.frombuffer(ds.PixelData, np.uint8)
    changed = np.flatnonzero(old != new)
    planes = np.broadcast_to(_mask(SIZE, burned_in_boxes(SIZE)), (3, SIZE, SIZE)).ravel()
    assert changed.size and planes[changed].all()  # planar: each changed byte is in a box of its plane


@pytest.mark.parametrize("maker", [oddities.ct_big_endian, oddities.ct_implicit_vr])
def test_other_byte_orders_and_vrs_are_blanked_in_place(tmp_path: Path, key, patient, maker) -> None:
    path = maker(tmp_path, patient)
    source = pydicom.dcmread(path)
    profile = _profile(tmp_path, _region("ct corner", f"modality: CT, rows: {source.Rows}", [(0, 0, 8, 4)]))
    ds, _ = release(path, profile, key)
    assert ds.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    mask = _mask(source.Rows, [(0, 0, 8, 4)])
    assert np.array_equal(ds.pixel_array[~mask], source.pixel_array[~mask])
    low = -(1 << (source.BitsStored - 1)) if source.PixelRepresentation else 0
    assert (ds.pixel_array[mask] == low).all()


def test_a_region_blanks_objects_that_are_not_at_risk_too(tmp_path: Path, key, patient) -> None:
    image = four_phase_ct(patient, slices=1, size=32)["A"][0]
    profile = _profile(tmp_path, _region("ct", "modality: CT, manufacturer: siemens", [(30, 30, 10, 10)]))
    ds, _ = release(image, profile, key)
    mask = _mask(32, [(30, 30, 10, 10)])  # clipped to the image: 2 x 2 pixels
    low = -(1 << (image.BitsStored - 1)) if image.PixelRepresentation else 0
    assert mask.sum() == 4 and (ds.pixel_array[mask] == low).all()
    assert np.array_equal(ds.pixel_array[~mask], image.pixel_array[~mask])
    assert ds.BurnedInAnnotation == "NO"


def test_the_first_matching_region_wins(tmp_path: Path, key) -> None:
    regions = (_region("specific", f"capture_model: syngo.via, rows: {SIZE}", [(0, 0, 4, 4)])
               + _region("general", "sop_class: SecondaryCaptureImageStorage", [(0, 0, SIZE, SIZE)]))
    profile = _profile(tmp_path, regions)
    source = fused_pet_ct_screenshot(size=SIZE)
    ds, _ = release(source, profile, key)
    changed = (ds.pixel_array != source.pixel_array).any(axis=-1)
    assert changed[:4, :4].any() and not changed[4:, :].any() and not changed[:, 4:].any()


def test_a_region_outside_the_image_is_refused(tmp_path: Path, key) -> None:
    profile = _profile(tmp_path, _region("far", "capture_model: syngo.via", [(SIZE, SIZE, 10, 10)]))
    with pytest.raises(ObjectError) as caught:
        release(fused_pet_ct_screenshot(size=SIZE), profile, key)
    assert caught.value.code == "region-outside-image" and "outside" in caught.value.message


def test_lossless_compressed_pixels_are_blanked_and_written_again_in_their_syntax(sc_profile: Profile,
                                                                                   key) -> None:
    patient = lung_patient("A", 6)
    source = fused_pet_ct_screenshot(patient, size=SIZE, rle=True)
    ds, _ = release(source, sc_profile, key)
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    before, after = source.pixel_array, ds.pixel_array
    mask = _mask(SIZE, burned_in_boxes(SIZE))
    assert (before[ink_mask(patient, SIZE)] != 0).all() and (after[mask] == 0).all()
    assert after[~mask].tobytes() == before[~mask].tobytes()
    assert ds.BurnedInAnnotation == "NO"


def test_lossy_compressed_pixels_are_quarantined_with_the_command_that_converts_them(
        sc_profile: Profile, key) -> None:
    with pytest.raises(ObjectError) as caught:
        release(jpeg_baseline(fused_pet_ct_screenshot(size=SIZE)), sc_profile, key)
    assert caught.value.code == "pixels-lossy"
    assert "dcmdjpeg" in caught.value.message and "pixels.lossy: reencode" in caught.value.message


def test_a_profile_may_write_lossy_pixels_again_losslessly(tmp_path: Path, key) -> None:
    region = _region("fused", f"capture_model: syngo.via, rows: {SIZE}", burned_in_boxes(SIZE))
    path = tmp_path / "lossy.yaml"
    path.write_text(f"name: lossy\nextends: vghtpe\npixels:\n  lossy: reencode\n  regions:\n{region}")
    ds, _ = release(jpeg_baseline(fused_pet_ct_screenshot(size=SIZE)), load_profile(path), key)
    assert ds.file_meta.TransferSyntaxUID == RLELossless and ds.LossyImageCompression == "01"
    assert (ds.pixel_array[_mask(SIZE, burned_in_boxes(SIZE))] == 0).all()


def test_an_object_at_risk_without_a_region_names_what_a_region_needs(sc_profile: Profile, key) -> None:
    patient = lung_patient("G", 5)
    with pytest.raises(ObjectError) as caught:
        release(fused_pet_ct_screenshot(patient, size=SIZE * 2), sc_profile, key)
    error = caught.value
    assert error.code == "burned-in-annotation-risk" and error.path == "(0028,0301)"
    assert "SecondaryCaptureImageStorage" in error.message and "128x128 pixels" in error.message
    assert "modality OT" in error.message and "pixels.regions" in error.message
    assert patient.patient_id not in error.message and patient.display_name not in error.message


def test_the_icon_goes_with_the_text_even_without_the_standard_table(tmp_path: Path, key) -> None:
    path = tmp_path / "own.yaml"
    path.write_text("name: own\nclasses: {instance_uids: remap_uid}\npixels:\n  regions:\n"
                    f"    - {{name: all, match: {{rows: {SIZE}}}, blank: [[0, 0, {SIZE}, 20]]}}\n")
    source = fused_pet_ct_screenshot(size=SIZE, icon=True)
    assert "IconImageSequence" in source
    ds, _ = release(source, load_profile(path), key)
    assert "IconImageSequence" not in ds and ds.BurnedInAnnotation == "NO"


@pytest.mark.parametrize(("photometric", "samples", "bits", "signed", "fill"), [
    ("MONOCHROME2", 1, 12, False, [0]),
    ("MONOCHROME2", 1, 12, True, [-2048]),
    ("MONOCHROME1", 1, 8, False, [255]),
    ("MONOCHROME1", 1, 16, True, [32767]),
    ("RGB", 3, 8, False, [0, 0, 0]),
    ("YBR_FULL", 3, 8, False, [0, 128, 128]),
    ("PALETTE COLOR", 1, 8, False, [0]),
])
def test_blanked_pixels_are_black_for_the_photometric_interpretation(photometric: str, samples: int, bits: int,
                                                                      signed: bool, fill: list[int]) -> None:
    from deid.engine.pixels import _fill

    assert _fill(photometric, samples, bits, signed) == fill


def test_a_subsampled_colour_layout_is_not_blanked_but_quarantined(sc_profile: Profile, key) -> None:
    source = fused_pet_ct_screenshot(size=SIZE)
    source.PhotometricInterpretation = "YBR_FULL_422"
    with pytest.raises(ObjectError) as caught:
        release(source, sc_profile, key)
    assert caught.value.code == "pixels-unsupported" and caught.value.path == "(0028,0004)"
