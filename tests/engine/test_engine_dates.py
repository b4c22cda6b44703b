"""Dates: the year stays, month and day become 01 01; a value that is not a date is quarantined."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import phi_found, release

from deid.engine.dates import DateFormError, generalise_da, generalise_dt
from deid.pipeline import Pipeline
from deid.outcome import Quarantined
from deid.synthetic import four_phase_ct, oddities, rtss


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20170415", "20170101"),
        ("19490415", "19490101"),
        ("", ""),
        (" 20170415 ", "20170101"),
        ("20170415-20180630", "20170101-20180101"),  # a range, part by part
        ("20170415-", "20170101-"),
        ("-20170415", "-20170101"),
        ("2017.04.15", "20170101"),  # ACR-NEMA 300's form (pydicom's ExplVR_BigEnd.dcm): standard form out
    ],
)
def test_generalise_da(value: str, expected: str) -> None:
    assert generalise_da(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20170415083012", "20170101083012"),
        ("20170415083012.123456", "20170101083012.123456"),
        ("20170415083012.123456+0800", "20170101083012.123456+0800"),  # time and offset kept
        ("20170415083012-0500", "20170101083012-0500"),
        ("2017041508", "2017010108"),
        ("20170415", "20170101"),
        ("201704", "201701"),  # partial: year and month
        ("2017", "2017"),  # partial: year only
        ("", ""),
        ("20170415083012-20180630101010", "20170101083012-20180101101010"),  # a range
        ("20170415-20180630", "20170101-20180101"),
    ],
)
def test_generalise_dt(value: str, expected: str) -> None:
    assert generalise_dt(value) == expected


@pytest.mark.parametrize("value", ["15/04/2017", "2017-04-15", "April 2017", "2017041"])
def test_a_value_that_is_not_a_date_is_refused(value: str) -> None:
    with pytest.raises(DateFormError) as caught:
        generalise_da(value)
    assert value not in str(caught.value)  # the message carries no value


@pytest.mark.parametrize("value", ["15/04/2017 08:30", "2017-04-15T08:30:00", "x2017"])
def test_a_value_that_is_not_a_datetime_is_refused(value: str) -> None:
    with pytest.raises(DateFormError):
        generalise_dt(value)


def test_date_forms_in_an_object(tmp_path: Path, vghtpe, key, patient) -> None:
    ds, data = release(oddities.ct_date_forms(tmp_path, patient), vghtpe, key)
    assert ds.AcquisitionDateTime == "20170101083012.123456+0800"
    assert ds.StartAcquisitionDateTime == "201701"
    assert ds.EndAcquisitionDateTime == "2017"
    assert ds.FrameReferenceDateTime == "20170101083012-0500"
    year = patient.study_date[:4]
    assert list(ds.DateOfLastCalibration) == [f"{year}0101", f"{year}0101"]
    assert list(ds.TimeOfLastCalibration) == ["071502.000000", "071502.000000"]  # times are kept
    for value in oddities.DATE_FORMS.values():
        assert value.encode() not in data or len(value) <= 4


def test_vghtpe_dates_in_the_ct_and_rtss(vghtpe, key, patient) -> None:
    images = four_phase_ct(patient, slices=2, size=16)["P"]
    ct, _ = release(images[0], vghtpe, key)
    structure, _ = release(rtss(patient, images), vghtpe, key)
    year, birth_year = patient.study_date[:4], patient.birth_date[:4]
    for ds in (ct, structure):
        assert ds.StudyDate == f"{year}0101"
        assert ds.PatientBirthDate == f"{birth_year}0101"
        assert ds.StudyTime == patient.study_time  # Table 5-1/5-2: Study Time kept
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert ct.ContentDate == ct.AcquisitionDate == ct.SeriesDate == f"{year}0101"  # every date
    assert ct.AcquisitionDateTime.startswith(f"{year}0101")
    assert structure.StructureSetDate == patient.structure_set_date  # Table 5-2: kept
    assert structure.StructureSetTime == "233859.371270"
    assert structure.DateOfLastCalibration == f"{year}0101"


def test_a_bad_date_is_quarantined_without_its_value(tmp_path: Path, vghtpe, key, patient) -> None:
    source = oddities.ct_bad_date(tmp_path / "in", patient)
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q")
    outcome = pipeline.process_file(source)
    assert isinstance(outcome, Quarantined)
    assert (outcome.code, outcome.stage, outcome.path) == ("rule-not-applicable", "rules", "(0008,0020)")
    reason = (tmp_path / "q" / str(outcome.entry) / "reason.json").read_text()
    assert oddities.BAD_DATE not in reason and not phi_found(reason, patient)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.dcm"))
