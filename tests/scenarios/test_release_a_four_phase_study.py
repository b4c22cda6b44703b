"""A user releases a four-phase liver CT and its RT Structure Set with `deid run`."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from support import SLICES, deid, phi_found, run_args, tree

from deid.synthetic import PHASES


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, sample_study: Path, key_file: Path) -> tuple:
    out = tmp_path_factory.mktemp("release") / "out"
    result = deid(*run_args(sample_study, out, key_file))
    return result, out


@pytest.fixture(scope="module")
def headers(released) -> dict[str, pydicom.Dataset]:
    _, out = released
    return {str(p.relative_to(out)): pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(out.rglob("*.dcm"))}


def test_the_run_succeeds_and_says_what_it_did(released) -> None:
    result, out = released
    assert result.returncode == 0, result.stderr
    expected = 4 * SLICES + 1
    assert f"{expected} objects: {expected} written, 0 skipped" in result.stdout
    assert "0 quarantined" in result.stdout and str(out) in result.stdout


def test_every_object_is_released(headers) -> None:
    modalities = sorted(ds.Modality for ds in headers.values())
    assert modalities == ["CT"] * (4 * SLICES) + ["RTSTRUCT"]
    assert {ds.SeriesDescription for ds in headers.values() if ds.Modality == "CT"} == {
        "Pre. Phas 5.0 B31f", "Art. Phas 5.0 B31f", "Port. Phas 5.0 B31f", "Del. Phas 5.0 B31f"}
    assert len({ds.SeriesInstanceUID for ds in headers.values()}) == len(PHASES) + 1
    assert len({ds.StudyInstanceUID for ds in headers.values()}) == 1


def test_no_planted_value_anywhere_in_the_output(released, patient) -> None:
    _, out = released
    files = tree(out)
    assert files
    for relative, data in files.items():
        assert phi_found(relative, patient) == [], relative
        assert phi_found(data, patient) == [], relative
        for date in (patient.study_date, patient.admitting_date, patient.calibration_date):
            assert date.encode() not in data, (relative, date)


def test_the_output_holds_only_dicom_objects(released) -> None:
    _, out = released
    assert {Path(relative).suffix for relative in tree(out)} == {".dcm"}
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_the_records_hold_no_identity(released, patient, sample_study: Path) -> None:
    _, out = released
    records = out.parent / "out-records"
    summary = json.loads((records / "summary.json").read_text())
    assert summary["written"] == 4 * SLICES + 1 and summary["quarantined"] == 0
    assert summary["profile"] == "vghtpe" and summary["key_fingerprint"]
    for relative, data in tree(records).items():
        assert phi_found(data, patient) == [], relative
        assert str(sample_study).encode() not in data, relative


def test_rtss_references_resolve_to_released_objects(headers) -> None:
    images = {ds.SOPInstanceUID: ds for ds in headers.values() if ds.Modality == "CT"}
    (structure,) = [ds for ds in headers.values() if ds.Modality == "RTSTRUCT"]
    frame = structure.ReferencedFrameOfReferenceSequence[0]
    study = frame.RTReferencedStudySequence[0]
    series = study.RTReferencedSeriesSequence[0]
    portal = {uid for uid, ds in images.items() if ds.SeriesDescription.startswith("Port.")}

    assert study.ReferencedSOPInstanceUID == structure.StudyInstanceUID
    assert {ds.StudyInstanceUID for ds in images.values()} == {structure.StudyInstanceUID}
    assert {ds.FrameOfReferenceUID for ds in images.values()} == {frame.FrameOfReferenceUID}
    assert structure.StructureSetROISequence[0].ReferencedFrameOfReferenceUID == frame.FrameOfReferenceUID
    assert {images[uid].SeriesInstanceUID for uid in portal} == {series.SeriesInstanceUID}
    assert {item.ReferencedSOPInstanceUID for item in series.ContourImageSequence} == portal
    contours = structure.ROIContourSequence[0].ContourSequence
    referenced = {i.ReferencedSOPInstanceUID for c in contours for i in c.ContourImageSequence}
    assert referenced and referenced <= portal
    for contour in contours:  # each contour lies on the slice it references
        (image,) = [images[i.ReferencedSOPInstanceUID] for i in contour.ContourImageSequence]
        assert float(contour.ContourData[2]) == pytest.approx(float(image.ImagePositionPatient[2]))


def test_ct_image_references_resolve(headers) -> None:
    images = {ds.SOPInstanceUID: ds for ds in headers.values() if ds.Modality == "CT"}
    for ds in images.values():
        for keyword in ("ReferencedImageSequence", "SourceImageSequence"):
            for item in ds.get(keyword, []):
                target = images[item.ReferencedSOPInstanceUID]
                assert target.SeriesInstanceUID == ds.SeriesInstanceUID


def test_identity_is_the_same_across_the_study(headers, patient) -> None:
    assert len({ds.PatientID for ds in headers.values()}) == 1
    assert len({ds.AccessionNumber for ds in headers.values()}) == 1
    assert len({str(ds.PatientName) for ds in headers.values()}) == 1
    for relative, ds in headers.items():
        assert Path(relative).parts[:3] == (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID)
        assert ds.PatientIdentityRemoved == "YES"
