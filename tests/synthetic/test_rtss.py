"""The RT Structure Set: references resolve and contours trace the tumour."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from deid.synthetic import four_phase_ct, make_patient, rtss
from deid.synthetic.phantom import TUMOUR_RADIUS_MM


@pytest.fixture(scope="module")
def images() -> list[Dataset]:
    return four_phase_ct(make_patient(0))["P"]


@pytest.fixture(scope="module")
def structure_set(images: list[Dataset]) -> Dataset:
    return rtss(make_patient(0), images)


def test_kept_labels(structure_set: Dataset) -> None:
    assert structure_set.Modality == "RTSTRUCT"
    assert structure_set.StructureSetROISequence[0].ROIName == "HCCP"
    assert structure_set.StructureSetLabel == "Liver tumour"
    assert structure_set.RTROIObservationsSequence[0].ROIObservationLabel == "Liver tumour"


def test_references_point_at_the_ct(structure_set: Dataset, images: list[Dataset]) -> None:
    by_uid = {ds.SOPInstanceUID: ds for ds in images}
    frame = structure_set.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == images[0].FrameOfReferenceUID
    study = frame.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == images[0].StudyInstanceUID
    series = study.RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == images[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in series.ContourImageSequence} == set(by_uid)
    roi = structure_set.StructureSetROISequence[0]
    assert roi.ReferencedFrameOfReferenceUID == images[0].FrameOfReferenceUID
    contours = structure_set.ROIContourSequence[0].ContourSequence
    assert 2 <= len(contours) < len(images)
    for contour in contours:
        assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID in by_uid


def test_contours_trace_the_tumour(structure_set: Dataset, images: list[Dataset]) -> None:
    by_uid = {ds.SOPInstanceUID: ds for ds in images}
    for contour in structure_set.ROIContourSequence[0].ContourSequence:
        image = by_uid[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        assert len(points) == contour.NumberOfContourPoints
        assert np.allclose(points[:, 2], float(image.ImagePositionPatient[2]))
        centre = points.mean(axis=0)
        assert np.linalg.norm(points[0, :2] - centre[:2]) <= TUMOUR_RADIUS_MM
        spacing = float(image.PixelSpacing[0])
        column, row = np.rint(
            (centre[:2] - np.asarray(image.ImagePositionPatient[:2], dtype=float)) / spacing
        ).astype(int)
        hu = image.pixel_array.astype(int) + int(image.RescaleIntercept)
        liver = hu[row, column - 6]  # outside the tumour, inside the liver
        assert hu[row, column] != liver and hu[row, column] > 0


def test_reading_physician_is_the_interpreter(structure_set: Dataset) -> None:
    p = make_patient(0)
    assert structure_set.RTROIObservationsSequence[0].ROIInterpreter == p.reading_physician
    assert structure_set.ReviewerName == p.reading_physician
    assert structure_set.PatientID == p.patient_id


def test_rtss_needs_images() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        rtss(make_patient(0), [])
