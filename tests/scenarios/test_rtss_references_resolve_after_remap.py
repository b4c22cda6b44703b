"""A user releases a CT study with its RT Structure Set (and SEG, PET) and opens the RTSS on the
released images: every reference of the RTSS points at a released instance of the same SOP Class."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from support import deid, released_headers, run_args, unresolved_references


@pytest.fixture(scope="module", params=["vghtpe", "ps3.15-basic"])
def released(request, tmp_path_factory: pytest.TempPathFactory, full_study: Path,
             key_file: Path) -> dict[str, pydicom.Dataset]:
    out = tmp_path_factory.mktemp("rtss") / "out"
    result = deid(*run_args(full_study, out, key_file, "--profile", request.param))
    assert result.returncode == 0, result.stdout + result.stderr
    return released_headers(out)


def _structure_set(headers: dict[str, pydicom.Dataset]) -> pydicom.Dataset:
    (structure,) = [ds for ds in headers.values() if ds.Modality == "RTSTRUCT"]
    return structure


def test_contour_image_sequence_of_the_referenced_series(released) -> None:
    structure = _structure_set(released)
    (frame,) = structure.ReferencedFrameOfReferenceSequence
    (study,) = frame.RTReferencedStudySequence
    (series,) = study.RTReferencedSeriesSequence
    images = [released[i.ReferencedSOPInstanceUID] for i in series.ContourImageSequence]
    assert len(images) == len(series.ContourImageSequence) > 1
    for item, image in zip(series.ContourImageSequence, images):
        assert item.ReferencedSOPClassUID == image.SOPClassUID
        assert image.SeriesInstanceUID == series.SeriesInstanceUID
        assert image.StudyInstanceUID == study.ReferencedSOPInstanceUID == structure.StudyInstanceUID
        assert image.FrameOfReferenceUID == frame.FrameOfReferenceUID


def test_roi_contours_point_at_the_slice_they_lie_on(released) -> None:
    structure = _structure_set(released)
    (roi,) = structure.StructureSetROISequence
    frames = {ds.FrameOfReferenceUID for ds in released.values() if "FrameOfReferenceUID" in ds}
    assert roi.ReferencedFrameOfReferenceUID in frames
    contours = structure.ROIContourSequence[0].ContourSequence
    assert contours
    for contour in contours:
        (item,) = contour.ContourImageSequence
        image = released[item.ReferencedSOPInstanceUID]
        assert item.ReferencedSOPClassUID == image.SOPClassUID
        assert float(contour.ContourData[2]) == pytest.approx(float(image.ImagePositionPatient[2]))


def test_no_reference_of_any_released_object_dangles(released) -> None:
    assert {ds.Modality for ds in released.values()} == {"CT", "RTSTRUCT", "SEG", "PT"}
    assert unresolved_references(released) == []
