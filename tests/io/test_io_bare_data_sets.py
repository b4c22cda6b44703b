"""A bare data set (no preamble, no file meta: old archives and some modalities write these) is read
in the transfer syntax it was found in, de-identified and written as a Part 10 file; anything that
is not plainly one stays ``not-dicom``."""

from __future__ import annotations

import io
import random
from pathlib import Path

import peers
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from deid.errors import ObjectError
from deid.io.reader import bare_syntax, read_object
from deid.pipeline import Pipeline
from deid.outcome import Written


def bare(name: str, *, implicit: bool = True, drop: tuple[str, ...] = ()) -> bytes:
    """pydicom's test file ``name`` as a bare data set: no preamble, no file meta, Little Endian."""
    ds = pydicom.dcmread(get_testdata_file(name))
    for keyword in drop:
        delattr(ds, keyword)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def _not_dicom(data: bytes) -> None:
    with pytest.raises(ObjectError) as caught:
        read_object(data)
    assert caught.value.code == "not-dicom"


@pytest.mark.parametrize(("implicit", "syntax"), [(True, ImplicitVRLittleEndian), (False, ExplicitVRLittleEndian)])
def test_a_bare_data_set_is_read_in_the_syntax_it_was_found_in(implicit: bool, syntax: str) -> None:
    data = bare("CT_small.dcm", implicit=implicit)
    assert data[:4] == b"\x08\x00\x05\x00" and b"DICM" not in data[:132]
    ds = read_object(data)
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.SOPInstanceUID == original.SOPInstanceUID and ds.PatientName == original.PatientName
    assert ds.PixelData == original.PixelData


def test_a_bare_data_set_is_released_as_a_part_10_file(tmp_path: Path, vghtpe, key) -> None:
    source = tmp_path / "in" / "IM0001"  # old archives: no suffix
    source.parent.mkdir()
    source.write_bytes(bare("CT_small.dcm"))
    outcome = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q").process_file(source)
    assert isinstance(outcome, Written), outcome
    output = tmp_path / "out" / outcome.released.output
    data = output.read_bytes()
    assert data[:128] == b"\x00" * 128 and data[128:132] == b"DICM"
    released = pydicom.dcmread(output)
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert released.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert released.file_meta.MediaStorageSOPInstanceUID == released.SOPInstanceUID != original.SOPInstanceUID
    assert released.PatientName != original.PatientName
    assert released.PixelData == original.PixelData
    peers.require_tool("dcmdump")
    assert peers.dcmdump_ok(output)


def test_pydicoms_own_bare_files_are_read_or_refused() -> None:
    """pydicom ships bare data sets: implicit (rtstruct.dcm) and explicit (ExplVR_LitEndNoMeta.dcm)
    Little Endian are read; Explicit VR Big Endian (retired) is not a bare data set here."""
    assert bare_syntax(Path(get_testdata_file("rtstruct.dcm")).read_bytes()) == ImplicitVRLittleEndian
    assert bare_syntax(Path(get_testdata_file("ExplVR_LitEndNoMeta.dcm")).read_bytes()) == ExplicitVRLittleEndian
    _not_dicom(Path(get_testdata_file("ExplVR_BigEndNoMeta.dcm")).read_bytes())


@pytest.mark.parametrize("missing", ["SOPClassUID", "SOPInstanceUID"])
def test_a_bare_data_set_without_its_sop_uids_stays_not_dicom(missing: str) -> None:
    _not_dicom(bare("CT_small.dcm", drop=(missing,)))


def test_a_bare_data_set_with_an_invalid_sop_instance_uid_stays_not_dicom() -> None:
    data = bare("CT_small.dcm")
    uid = pydicom.dcmread(get_testdata_file("CT_small.dcm")).SOPInstanceUID.encode()
    assert data.count(uid) == 1
    _not_dicom(data.replace(uid, b"x" * len(uid)))


def test_other_files_stay_not_dicom() -> None:
    from PIL import Image

    jpeg = io.BytesIO()
    Image.new("L", (16, 16), 128).save(jpeg, "JPEG")
    csv = b"filename,xmin,ymin,xmax,ymax,label\nIM0001.dcm,10,10,40,40,nodule\n"
    text = b"This is a scanned referral letter, not a DICOM object.\n"
    rng = random.Random(10)
    noise = bytes(rng.randrange(256) for _ in range(4096))
    for data in (jpeg.getvalue(), csv, text, noise, b"", b"\x08\x00"):
        _not_dicom(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([b"", b"\x08\x00", b"\x08\x00\x05\x00", b"\x08\x00\x16\x00UI"]))
def test_random_bytes_stay_not_dicom_even_when_they_start_like_group_0008(tail: bytes, head: bytes) -> None:
    _not_dicom(head + tail)
