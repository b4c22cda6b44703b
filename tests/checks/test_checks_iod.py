"""The in-process IOD check finds missing Type 1/2 attributes and values that do not fit their VR;
optional modules that are absent and SR value types that do not apply are not reported."""

from __future__ import annotations

import copy
from io import BytesIO

import pytest
from pydicom import config, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from support import to_bytes

from deid.checks.iod import iod_problems
from deid.io.reader import read_object
from deid.synthetic import four_phase_ct, rtss


@pytest.fixture(scope="module")
def phases(patient) -> dict[str, list[Dataset]]:
    return four_phase_ct(patient, slices=2, size=16, private_elements=0)


def as_read(ds: Dataset) -> Dataset:
    """The dataset as the pipeline reads it (raw values)."""
    return read_object(to_bytes(ds))


def kinds(ds: Dataset) -> list[tuple[str, str]]:
    return [(p.kind, p.path) for p in iod_problems(ds, ds.SOPClassUID)]


def test_builder_objects_have_no_problem(phases, patient, landmark_study) -> None:
    assert kinds(as_read(phases["N"][0])) == []  # no contrast: the Contrast/Bolus module is absent
    assert kinds(as_read(phases["A"][0])) == []
    assert kinds(as_read(rtss(patient, phases["P"]))) == []
    for data in landmark_study[1].values():
        assert kinds(read_object(data)) == []


def test_type1_missing_and_empty_and_type2_missing(phases) -> None:
    ds = copy.deepcopy(phases["A"][0])
    del ds.ImagePositionPatient  # Image Plane, Type 1
    ds.ImageType = ""  # CT Image, Type 1
    del ds.PatientID  # Patient, Type 2
    del ds.ContrastBolusAgent  # Contrast/Bolus (present: other attributes are), Type 2
    assert sorted(kinds(as_read(ds))) == [
        ("type1-empty", "(0008,0008)"),
        ("type1-missing", "(0020,0032)"),
        ("type2-missing", "(0010,0020)"),
        ("type2-missing", "(0018,0010)"),
    ]


def test_nested_type1_in_a_present_sequence(phases) -> None:
    ds = copy.deepcopy(phases["A"][0])
    del ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert kinds(as_read(ds)) == [("type1-missing", "(0008,1140)[0].(0008,1155)")]


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the values we plant
@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("StudyDate", "2017-01-01"),
        ("SOPInstanceUID", "1.02.3"),
        ("PatientSex", "f"),
        ("SliceThickness", "12345678901234567"),
        ("InstanceNumber", "1.5"),
        ("StudyTime", "25h00"),
        ("AccessionNumber", "A" * 17),
        ("PatientAge", "65"),
    ],
)
def test_values_written_that_do_not_fit_their_vr(phases, keyword: str, value: str) -> None:
    ds = as_read(phases["A"][0])
    with config.disable_value_validation():
        setattr(ds, keyword, value)  # as a rule would write it
    tag = ds.data_element(keyword).tag
    assert kinds(ds) == [("value-does-not-fit-vr", f"({tag.group:04X},{tag.element:04X})")]


@pytest.mark.parametrize(("keyword", "payload", "fits"), [
    ("StudyDate", b"20170101", True), ("StudyDate", b"2017-1-1", False),
    ("SOPInstanceUID", b"1.2.3\x00", True), ("SOPInstanceUID", b"1.02.3", False),
    ("PatientSex", b"F ", True), ("PatientSex", b"f ", False),
])
def test_raw_values_the_rules_wrote_are_judged_alike_in_every_object(
        phases, keyword: str, payload: bytes, fits: bool) -> None:
    """The rules write a value raw (no offset in the file): the same bytes give the same answer in
    every object (deid.checks.iod keeps the answers for short values of the ASCII-only VRs)."""
    found = []
    for ds in (as_read(phases["A"][0]), as_read(phases["A"][1])):
        tag = ds.data_element(keyword).tag
        vr = ds._dict[tag].VR
        ds._dict[tag] = RawDataElement(tag, vr, len(payload), bytes(payload), 0, False, True)
        found.append(kinds(ds))
    expected = [] if fits else [("value-does-not-fit-vr", f"({tag.group:04X},{tag.element:04X})")]
    assert found == [expected, expected]


def test_the_answers_kept_start_again_when_full_and_stay_right(phases, monkeypatch) -> None:
    from deid.checks import iod

    monkeypatch.setattr(iod, "_FORM_FITS", {})
    monkeypatch.setattr(iod, "_FORM_FITS_MOST", 2)
    found = []
    for payload in (b"2017-1-1", b"20170101", b"20170102", b"2017-1-1", b"20170103", b"2017-1-1"):
        ds = as_read(phases["A"][0])
        ds._dict[BaseTag(0x00080020)] = RawDataElement(BaseTag(0x00080020), "DA", len(payload),
                                                       payload, 0, False, True)
        found.append(bool(kinds(ds)))
        assert len(iod._FORM_FITS) <= 2
    assert found == [True, False, False, True, False, True]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_values_as_the_input_had_them_are_not_judged(phases) -> None:
    """A value still raw at its place in the file is the input's: not de-identification's."""
    ds = copy.deepcopy(phases["A"][0])
    with config.disable_value_validation():
        ds.StudyDate = "2017-01-01"
        data = to_bytes(ds)
    assert kinds(read_object(data)) == []


def test_sr_content_items_need_only_their_value_types_attributes(landmark_study) -> None:
    ds = dcmread(BytesIO(landmark_study[1]["comprehensive"]))
    root = ds.ContentSequence
    text = next(i for i, item in enumerate(root) if item.ValueType == "TEXT")
    del root[text].TextValue
    code = next(i for i, item in enumerate(root) if item.ValueType == "CODE")
    del root[code].ConceptCodeSequence
    assert sorted(kinds(as_read(ds))) == [
        ("type1-missing", f"(0040,A730)[{code}].(0040,A168)"),
        ("type1-missing", f"(0040,A730)[{text}].(0040,A160)"),
    ]


def test_an_unknown_sop_class_is_not_checked(phases) -> None:
    ds = as_read(phases["A"][0])
    del ds.ImagePositionPatient
    assert iod_problems(ds, "1.2.3.4") == []
