"""A user releases a PET/CT study (Lung-PET-CT-Dx style: PET and CT of one patient and study):
each PET slice still names its released attenuation CT, PET and CT share one released Frame of
Reference, and the injection date-time is generalised like the scan's dates, keeping the uptake
time that SUV needs."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from support import SLICES, deid, phi_found, released_headers, run_args, tree, unresolved_references

from deid.synthetic import PHASES


@pytest.fixture(scope="module", params=["vghtpe", "ps3.15-basic"])
def released(request, tmp_path_factory: pytest.TempPathFactory, full_study: Path, key_file: Path):
    out = tmp_path_factory.mktemp("petct") / "out"
    result = deid(*run_args(full_study, out, key_file, "--profile", request.param))
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param, out, released_headers(out)


def _pet(headers: dict[str, pydicom.Dataset]) -> list[pydicom.Dataset]:
    return sorted((ds for ds in headers.values() if ds.Modality == "PT"), key=lambda d: d.InstanceNumber)


def _seconds(value: str) -> float:
    return int(value[:2]) * 3600 + int(value[2:4]) * 60 + float(value[4:])


def test_pet_and_ct_share_study_and_frame_of_reference(released) -> None:
    _profile, _out, headers = released
    pet = _pet(headers)
    assert len(pet) == SLICES and len(headers) == SLICES * (len(PHASES) + 1) + 2
    assert len({ds.StudyInstanceUID for ds in headers.values()}) == 1
    ct = [ds for ds in headers.values() if ds.Modality == "CT"]
    assert {ds.FrameOfReferenceUID for ds in pet} == {ds.FrameOfReferenceUID for ds in ct}
    assert unresolved_references(headers) == []


def test_each_pet_slice_names_its_released_ct(released) -> None:
    profile, _out, headers = released
    for ds in _pet(headers):
        if profile == "ps3.15-basic":  # X/Z/U*, Type 3 in a PET image: the standard removes it
            assert "ReferencedImageSequence" not in ds
            continue
        (item,) = ds.ReferencedImageSequence
        ct = headers[item.ReferencedSOPInstanceUID]
        assert ct.SOPClassUID == item.ReferencedSOPClassUID and ct.Modality == "CT"
        assert ct.ImagePositionPatient[2] == ds.ImagePositionPatient[2]


def test_dates_are_generalised_and_the_uptake_time_kept(released, patient) -> None:
    profile, _out, headers = released
    year = patient.study_date[:4]
    for ds in _pet(headers):
        drug = ds.RadiopharmaceuticalInformationSequence[0]
        if profile == "ps3.15-basic":  # without the modified-dates option dates and times go
            assert "RadiopharmaceuticalStartDateTime" not in drug and "AcquisitionDateTime" not in ds
            continue
        assert ds.SeriesDate == ds.AcquisitionDate == ds.StudyDate == f"{year}0101"
        start, scan = drug.RadiopharmaceuticalStartDateTime, ds.AcquisitionDateTime
        assert start[:8] == scan[:8] == f"{year}0101"
        assert _seconds(scan[8:]) - _seconds(start[8:]) == pytest.approx(3600)
        assert drug.RadiopharmaceuticalStartTime == start[8:]
        assert float(drug.RadionuclideTotalDose) > 0 and drug.RadionuclideHalfLife


def test_no_planted_value_in_the_pet(released, patient) -> None:
    _profile, out, headers = released
    pet_series = {ds.SeriesInstanceUID for ds in _pet(headers)}
    for relative, data in tree(out).items():
        if Path(relative).parts[2] in pet_series:
            assert phi_found(data, patient) == [], relative
            assert patient.study_date.encode() not in data
            assert patient.series_uid("PT").encode() not in data
