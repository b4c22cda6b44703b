"""Awkward inputs for fail-closed tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, RLELossless

from deid.synthetic import make_patient, oddities

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peers import dciodvfy_errors, dcmdump_ok


def test_not_dicom(tmp_path: Path) -> None:
    path = oddities.not_dicom(tmp_path)
    with pytest.raises(InvalidDicomError):
        pydicom.dcmread(path)
    assert not dcmdump_ok(path)


def test_truncated_is_cut_inside_the_header(tmp_path: Path) -> None:
    path = oddities.truncated_dicom(tmp_path, make_patient(0))
    data = path.read_bytes()
    assert data[128:132] == b"DICM" and b"\xe0\x7f\x10\x00" not in data
    assert not dcmdump_ok(path)


def test_unknown_transfer_syntax(tmp_path: Path) -> None:
    path = oddities.unknown_transfer_syntax(tmp_path, make_patient(0))
    meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
    assert meta.TransferSyntaxUID == oddities.UNKNOWN_TRANSFER_SYNTAX


@pytest.mark.parametrize("burned_in", [None, "YES", "NO"])
def test_secondary_capture(tmp_path: Path, burned_in: str | None) -> None:
    path = oddities.secondary_capture(tmp_path, make_patient(0), burned_in)
    ds = pydicom.dcmread(path)
    assert ds.get("BurnedInAnnotation") == burned_in
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert dciodvfy_errors(path) == []


def test_rle_pixel_data_is_encapsulated(tmp_path: Path) -> None:
    path = oddities.ct_rle(tmp_path, make_patient(0))
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    assert ds["PixelData"].is_undefined_length
    assert ds.PixelData[:4] == b"\xfe\xff\x00\xe0"  # basic offset table item
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert dciodvfy_errors(path) == [] and dcmdump_ok(path)


def test_other_encodings_hold_the_same_pixels(tmp_path: Path) -> None:
    patient = make_patient(0)
    implicit = pydicom.dcmread(oddities.ct_implicit_vr(tmp_path, patient))
    big = pydicom.dcmread(oddities.ct_big_endian(tmp_path, patient))
    rle = pydicom.dcmread(oddities.ct_rle(tmp_path, patient))
    assert implicit.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert big.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    assert (implicit.pixel_array == big.pixel_array).all()
    assert (implicit.pixel_array == rle.pixel_array).all()
    for path in tmp_path.iterdir():
        assert dciodvfy_errors(path) == [] and dcmdump_ok(path), path.name


def test_date_forms(tmp_path: Path) -> None:
    p = make_patient(0)
    ds = pydicom.dcmread(oddities.ct_date_forms(tmp_path, p))
    for keyword, value in oddities.DATE_FORMS.items():
        assert ds[keyword].value == value
    assert list(ds.DateOfLastCalibration) == [p.calibration_date, p.study_date]
    assert dcmdump_ok(tmp_path / "ct_date_forms.dcm")


def test_bad_date_is_not_a_da_value(tmp_path: Path) -> None:
    data = oddities.ct_bad_date(tmp_path, make_patient(0)).read_bytes()
    assert b"DA\x0a\x00" + oddities.BAD_DATE.encode() in data


def test_deep_sequences_hold_identity_three_levels_down(tmp_path: Path) -> None:
    p = make_patient(0)
    ds = pydicom.dcmread(oddities.ct_deep_sequences(tmp_path, p))
    depth2 = ds.ReferencedImageSequence[0].SourceImageSequence[0]
    assert depth2.PatientName == p.name and depth2.PatientID == p.patient_id
    assert depth2.private_block(0x0011, "VGH PACS INFO 1.0")[0x01].value.startswith(p.patient_id)
    depth3 = depth2.ReferencedSeriesSequence[0]
    assert depth3.AccessionNumber == p.accession_number
