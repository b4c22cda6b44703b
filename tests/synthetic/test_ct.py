"""The four-phase CT: structure, geometry, pixels and planted attributes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pydicom import config
from pydicom.datadict import dictionary_is_retired
from pydicom.dataset import Dataset

from deid.synthetic import PHASES, ct_slice, four_phase_ct, instance_uid, make_patient
from deid.synthetic.legacy import RETIRED_KEYWORDS
from deid.synthetic.phantom import TUMOUR_CENTRE_MM, SliceGeometry


@pytest.fixture
def strict() -> Iterator[None]:
    """Raise on any value that does not fit its VR while building."""
    saved = config.settings.reading_validation_mode, config.settings.writing_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    config.settings.writing_validation_mode = config.RAISE
    yield
    config.settings.reading_validation_mode, config.settings.writing_validation_mode = saved


@pytest.fixture(scope="module")
def study() -> dict[str, list[Dataset]]:
    return four_phase_ct(make_patient(0))


def test_every_value_fits_its_vr(strict: None) -> None:
    for index in (0, 1, 2, 3):
        four_phase_ct(make_patient(index), slices=2, size=16)
        ct_slice(make_patient(index), series_uid="1.2.3", index=0, size=16, signed=True)


def test_four_series_in_one_study(study: dict[str, list[Dataset]]) -> None:
    assert list(study) == list(PHASES)
    first = [images[0] for images in study.values()]
    assert len({ds.SeriesInstanceUID for ds in first}) == 4
    assert len({ds.StudyInstanceUID for ds in first}) == 1
    assert len({ds.FrameOfReferenceUID for ds in first}) == 1
    assert first[2].SeriesDescription == "Port. Phas 5.0 B31f"
    for ds in first:
        assert (ds.ImageComments, ds.BodyPartExamined, ds.Manufacturer) == (
            "IV contrast",
            "ABDOMEN",
            "SIEMENS",
        )
        assert ds.StudyDescription == "CT SCAN-UPPER ABDOMEN"
    assert "ContrastBolusAgent" not in first[0] and "ContrastBolusAgent" in first[1]


def test_slices_are_ordered_and_referenced(study: dict[str, list[Dataset]]) -> None:
    images = study["P"]
    assert [ds.InstanceNumber for ds in images] == list(range(1, 9))
    z = [float(ds.ImagePositionPatient[2]) for ds in images]
    assert np.allclose(np.diff(z), -5.0)
    uids = {ds.SOPInstanceUID for ds in images}
    assert images[3].SOPInstanceUID == instance_uid(images[3].SeriesInstanceUID, 3)
    for ds in images:
        assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID in uids
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID in uids


def test_pixels_are_ct_with_an_enhancing_tumour(study: dict[str, list[Dataset]]) -> None:
    geometry = SliceGeometry(64)
    column = round((TUMOUR_CENTRE_MM[0] - geometry.position(0)[0]) / geometry.pixel_spacing)
    row = round((TUMOUR_CENTRE_MM[1] - geometry.position(0)[1]) / geometry.pixel_spacing)
    hu = {}
    for phase, images in study.items():
        ds = images[3]
        pixels = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)
        assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.max() < 4096
        assert pixels[0, 0] == -1000
        hu[phase] = pixels[row - 1 : row + 2, column - 1 : column + 2].mean()
    assert hu["A"] > hu["P"] > hu["N"]  # arterial enhancement, then wash-out


def test_signed_pixels_keep_the_same_hounsfield_units() -> None:
    p = make_patient(0)
    plain = ct_slice(p, series_uid="1.2.3", index=3, size=32)
    signed = ct_slice(p, series_uid="1.2.3", index=3, size=32, signed=True)
    assert signed.PixelRepresentation == 1 and signed.pixel_array.dtype == np.int16
    assert np.array_equal(plain.pixel_array.astype(int), signed.pixel_array.astype(int))


def test_benchmark_slice_has_realistic_size() -> None:
    p = make_patient(0)
    ds = ct_slice(p, series_uid=p.series_uid("P"), index=0)
    assert (ds.Rows, ds.Columns) == (512, 512)
    assert sum(1 for e in ds if e.tag.is_private) == 185
    private_sq = [e for e in ds if e.tag.is_private and e.VR == "SQ"]
    assert private_sq and private_sq[0][0].PatientID == p.patient_id


def test_private_element_count_is_exact() -> None:
    p = make_patient(0)
    for count in (0, 14, 20, 300):
        ds = ct_slice(p, series_uid="1.2.3", index=0, size=8, private_elements=count)
        assert sum(1 for e in ds if e.tag.is_private) == count
    with pytest.raises(ValueError, match="private_elements"):
        ct_slice(p, series_uid="1.2.3", index=0, size=8, private_elements=5)


def test_legacy_places_are_planted(study: dict[str, list[Dataset]]) -> None:
    ds = study["N"][0]
    p = make_patient(0)
    for keyword in RETIRED_KEYWORDS:
        assert keyword in ds and dictionary_is_retired(keyword), keyword
    assert p.name in ds[0x60001500].value and p.display_name in ds[0x50000022].value
    assert ds[0x60000010].value == ds.Rows
    assert len(ds[0x60003000].value) == ds.Rows * ds.Columns // 8
    assert ds.file_meta.SourceApplicationEntityTitle == p.ae_title
    assert p.patient_id.encode() in ds.file_meta.PrivateInformation
