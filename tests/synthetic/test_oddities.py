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
