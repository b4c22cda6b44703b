"""The landmark SRs: three SR classes, highdicom reads them, landmarks on the CT, PHI planted."""

from __future__ import annotations

from io import BytesIO

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from support import to_bytes

from deid.synthetic import LANDMARKS, SR_CLASSES, landmark_sr, make_patient

CONTENT = 0x0040A730


def content_items(ds: Dataset) -> list[Dataset]:
    """Every content item below the root, depth first."""
    found = []
    for item in ds.get("ContentSequence", []):
        found.append(item)
        found += content_items(item)
    return found


@pytest.fixture(scope="module")
def images(landmark_study) -> list[Dataset]:
    return landmark_study[0]


@pytest.fixture(scope="module", params=sorted(SR_CLASSES))
def report(
    request: pytest.FixtureRequest, landmark_study, tmp_path_factory: pytest.TempPathFactory
):
    data = landmark_study[1][request.param]
    path = tmp_path_factory.mktemp("sr") / f"{request.param}.dcm"
    path.write_bytes(data)
    return request.param, dcmread(path), path


def test_sop_class_and_highdicom_reads_it(report) -> None:
    kind, ds, path = report
    assert ds.SOPClassUID == SR_CLASSES[kind]
    sr = hd.sr.srread(path)
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == (30 if kind == "comprehensive3d" else 15)
    assert {g.finding_sites[0].value.value for g in groups} == {lm.code for lm in LANDMARKS}


def test_scoord_points_reference_ct_images(report, images: list[Dataset]) -> None:
    _, _, path = report
    by_uid = {im.SOPInstanceUID: im for im in images}
    sr = hd.sr.srread(path)
    planar = [
        g
        for g in sr.content.get_planar_roi_measurement_groups()
        if g.roi.value_type == hd.sr.ValueTypeValues.SCOORD
    ]
    assert len(planar) == 15
    for group in planar:
        image_ref = group.roi.ContentSequence[0].ReferencedSOPSequence[0]
        image = by_uid[image_ref.ReferencedSOPInstanceUID]
        assert image_ref.ReferencedSOPClassUID == image.SOPClassUID
        column, row = np.asarray(group.roi.GraphicData, dtype=float)
        assert 0 < column < image.Columns and 0 < row < image.Rows


def test_scoord3d_points_are_in_the_frame_of_reference(report, images: list[Dataset]) -> None:
    kind, ds, _ = report
    volumetric = [item for item in content_items(ds) if item.ValueType == "SCOORD3D"]
    if kind != "comprehensive3d":
        assert volumetric == []  # Enhanced and Comprehensive SR do not allow SCOORD3D
        return
    assert len(volumetric) == 15
    zs = {float(im.ImagePositionPatient[2]) for im in images}
    for item in volumetric:
        assert item.ReferencedFrameOfReferenceUID == images[0].FrameOfReferenceUID
        assert float(item.GraphicData[2]) in zs


def test_evidence_lists_the_referenced_images(report, images: list[Dataset]) -> None:
    _, ds, _ = report
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == images[0].StudyInstanceUID
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == images[0].SeriesInstanceUID
    referenced = {i.ReferencedSOPInstanceUID for i in series.ReferencedSOPSequence}
    assert referenced <= {im.SOPInstanceUID for im in images} and referenced


def test_phi_is_planted_in_the_content_tree(report) -> None:
    _, ds, _ = report
    p = make_patient(0)
    items = content_items(ds)
    by_type: dict[str, list[Dataset]] = {}
    for item in items:
        by_type.setdefault(item.ValueType, []).append(item)
    names = {str(i.PersonName) for i in by_type["PNAME"]}
    assert p.reading_physician in names and p.dicom_name in names
    texts = [str(i.TextValue) for i in by_type["TEXT"]]
    assert p.patient_id in texts and p.institution in texts
    assert any(p.display_name in t for t in texts)
    assert any("reviewed in 3D" in t for t in texts)  # the harmless one
    assert p.birth_date in {str(i.Date) for i in by_type["DATE"]}
    assert p.study_date in {str(i.Date) for i in by_type["DATE"]}
    assert by_type["TIME"] and by_type["DATETIME"] and len(by_type["UIDREF"]) >= 3
    assert ds.VerifyingObserverSequence[0].VerifyingObserverName == p.reading_physician
    assert ds.PatientName == p.dicom_name and ds.AccessionNumber == p.accession_number


def test_deterministic(landmark_study) -> None:
    images, reports = landmark_study
    assert (
        to_bytes(landmark_sr(make_patient(0), images, sop_class="enhanced")) == reports["enhanced"]
    )


def test_bad_arguments(images: list[Dataset]) -> None:
    with pytest.raises(ValueError, match="sop_class"):
        landmark_sr(make_patient(0), images, sop_class="basic")
    with pytest.raises(ValueError, match="at least one image"):
        landmark_sr(make_patient(0), [])


def test_every_context_plants_observer_subject_and_procedure_context(landmark_study) -> None:
    from deid.synthetic.sr import context_values

    patient = make_patient(0)
    images = landmark_study[0]
    data = to_bytes(landmark_sr(patient, images, sop_class="comprehensive", every_context=True))
    assert data == to_bytes(landmark_sr(patient, images, sop_class="comprehensive",
                                        every_context=True))  # deterministic
    ds = dcmread(BytesIO(data))
    meanings = {i.ConceptNameCodeSequence[0].CodeMeaning for i in content_items(ds)}
    assert {"Person Observer's Login Name", "Device Observer Serial Number",
            "Device Observer Physical Location During Observation", "Placer Number",
            "Filler Number", "Accession Number", "Procedure Study Instance UID", "Finding",
            "Subject ID"} <= meanings
    for role, value in context_values(patient).items():
        assert value.encode() in data, role
    assert hd.sr.srread(BytesIO(data)).content.get_planar_roi_measurement_groups()
    plain = landmark_study[1]["comprehensive"]
    assert ds.SeriesInstanceUID != dcmread(BytesIO(plain)).SeriesInstanceUID
