"""The PET builder: same patient, study and frame as the CT, FDG injection, uptake in the tumour."""

from __future__ import annotations

import numpy as np
import peers
import pytest
from pydicom.dataset import Dataset
from support import SLICES, to_bytes

from deid.synthetic import four_phase_ct, later_study, make_patient, pet_series
from deid.synthetic.phantom import SliceGeometry, region_mask


@pytest.fixture(scope="module")
def ct() -> list[Dataset]:
    return four_phase_ct(make_patient(0), slices=SLICES, size=16)["N"]


@pytest.fixture(scope="module")
def pet(ct: list[Dataset]) -> list[Dataset]:
    return pet_series(make_patient(0), slices=SLICES, size=16, ct_series_uid=ct[0].SeriesInstanceUID)


def test_same_patient_study_and_frame_as_the_ct(pet: list[Dataset], ct: list[Dataset]) -> None:
    for ds in pet:
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.128" and ds.Modality == "PT"
        for keyword in ("PatientID", "StudyInstanceUID", "FrameOfReferenceUID", "AccessionNumber"):
            assert ds[keyword].value == ct[0][keyword].value, keyword
    assert len({ds.SOPInstanceUID for ds in pet}) == SLICES
    assert [ds.ImagePositionPatient[2] for ds in pet] == [ds.ImagePositionPatient[2] for ds in ct]


def test_each_slice_references_its_attenuation_ct(pet: list[Dataset], ct: list[Dataset]) -> None:
    for image, source in zip(pet, ct):
        (ref,) = image.ReferencedImageSequence
        assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (
            source.SOPClassUID, source.SOPInstanceUID)


def test_the_injection_is_an_hour_before_the_scan(pet: list[Dataset]) -> None:
    p = make_patient(0)
    drug = pet[0].RadiopharmaceuticalInformationSequence[0]
    assert drug.RadiopharmaceuticalStartDateTime.startswith(p.study_date)
    injected = drug.RadiopharmaceuticalStartDateTime[8:14]
    scanned = pet[0].AcquisitionDateTime[8:14]
    seconds = [int(t[:2]) * 3600 + int(t[2:4]) * 60 + int(t[4:6]) for t in (injected, scanned)]
    assert seconds[1] - seconds[0] == 3600
    assert drug.RadionuclideCodeSequence[0].CodeMeaning == "^18^Fluorine"


def test_the_tumour_is_the_hottest_region(pet: list[Dataset]) -> None:
    geometry = SliceGeometry(16)
    for index, ds in enumerate(pet):
        tumour = region_mask(geometry, index, "tumour")
        if not tumour.any():
            continue
        activity = ds.pixel_array * float(ds.RescaleSlope)
        assert activity[tumour].mean() > 3 * activity[~tumour].mean()


def test_later_study_is_the_same_patient_in_a_new_study() -> None:
    p = make_patient(0)
    q = later_study(p)
    assert (q.patient_id, q.name, q.birth_date) == (p.patient_id, p.name, p.birth_date)
    assert q.study_instance_uid != p.study_instance_uid and q.study_date > p.study_date
    assert q.accession_number != p.accession_number
    assert q.frame_of_reference_uid != p.frame_of_reference_uid
    assert later_study(p, 2).study_date > q.study_date and later_study(p) == q


def test_dciodvfy_finds_no_error(tmp_path, pet: list[Dataset]) -> None:
    peers.require_tool("dciodvfy")
    path = tmp_path / "pet.dcm"
    path.write_bytes(to_bytes(pet[1]))
    assert "PETImage" in peers.dciodvfy_lines(path)
    assert peers.dciodvfy_errors(path) == []
    assert np.asarray(pet[1].pixel_array).dtype == np.int16
