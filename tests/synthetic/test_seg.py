"""The SEG builder: highdicom masks of the phantom over a CT series, references and planted PHI."""

from __future__ import annotations

from io import BytesIO

import highdicom as hd
import numpy as np
import peers
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage
from support import SIZE, SLICES, to_bytes

from deid.synthetic import four_phase_ct, make_patient, segmentation
from deid.synthetic.phantom import SliceGeometry, region_mask
from deid.synthetic.seg import SEGMENTS


@pytest.fixture(scope="module")
def images() -> list[Dataset]:
    return four_phase_ct(make_patient(0), slices=SLICES, size=SIZE)["P"]


@pytest.fixture(scope="module")
def seg(images: list[Dataset]) -> Dataset:
    return segmentation(make_patient(0), images)


def test_it_is_a_binary_seg_of_three_segments(seg: Dataset) -> None:
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.Modality == "SEG"
    assert seg.SegmentationType == "BINARY"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Liver", "HCC", "Vertebra"]
    assert seg.SeriesInstanceUID == make_patient(0).series_uid("SEG")


def test_it_references_its_source_images(seg: Dataset, images: list[Dataset]) -> None:
    sources = {ds.SOPInstanceUID for ds in images}
    (series,) = seg.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == images[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} == sources
    assert {i.ReferencedSOPClassUID for i in series.ReferencedInstanceSequence} == {CTImageStorage}
    assert seg.FrameOfReferenceUID == images[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == images[0].StudyInstanceUID
    for frame in seg.PerFrameFunctionalGroupsSequence:
        (source,) = frame.DerivationImageSequence[0].SourceImageSequence
        assert source.ReferencedSOPInstanceUID in sources


def test_masks_are_the_phantom_regions(seg: Dataset, images: list[Dataset]) -> None:
    read = hd.seg.segread(BytesIO(to_bytes(seg)))
    geometry = SliceGeometry(SIZE)
    for index, image in enumerate(images):
        pixels = read.get_pixels_by_source_instance(
            [image.SOPInstanceUID], segment_numbers=list(SEGMENTS),
            assert_missing_frames_are_empty=True,
        )[0]
        for number, (region, *_rest) in SEGMENTS.items():
            expected = region_mask(geometry, index, region)
            assert np.array_equal(pixels[..., number - 1].astype(bool), expected), (index, region)
    assert any(region_mask(geometry, i, "tumour").any() for i in range(SLICES))


def test_the_same_arguments_give_the_same_bytes(seg: Dataset, images: list[Dataset]) -> None:
    assert to_bytes(segmentation(make_patient(0), images)) == to_bytes(seg)


def test_phi_is_planted_where_a_deidentifier_must_clean(seg: Dataset) -> None:
    p = make_patient(0)
    data = to_bytes(seg)
    assert seg.ContentCreatorName == p.reading_physician
    assert seg.PatientName == p.dicom_name and seg.PatientID == p.patient_id
    assert seg.InstitutionName == p.institution and seg.DeviceSerialNumber == p.device_serial_number
    assert seg.ContentDate == p.structure_set_date
    assert p.name.encode() in data and any(elem.tag.is_private for elem in seg)
    assert p.ae_title.encode() in data  # file meta


def test_dciodvfy_finds_no_error(tmp_path, seg: Dataset) -> None:
    peers.require_tool("dciodvfy")
    path = tmp_path / "seg.dcm"
    path.write_bytes(to_bytes(seg))
    assert "Segmentation" in peers.dciodvfy_lines(path)
    assert peers.dciodvfy_errors(path) == []
