"""Awkward inputs for fail-closed tests; each function writes one file and returns its path."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from deid.synthetic.ct import ct_slice
from deid.synthetic.files import write_dataset
from deid.synthetic.identity import SyntheticPatient, make_patient
from deid.synthetic.sc import secondary_capture_image

#: The made-up transfer syntax written by :func:`unknown_transfer_syntax`.
UNKNOWN_TRANSFER_SYNTAX = "1.2.3.4.5.6.7.8"


def _ct(
    patient: SyntheticPatient | None, label: str, transfer_syntax: str = ExplicitVRLittleEndian
) -> Dataset:
    p = patient or make_patient(0)
    return ct_slice(
        p,
        series_uid=p.series_uid(label),
        index=3,
        size=64,
        private_elements=20,
        transfer_syntax=transfer_syntax,
    )


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def not_dicom(folder: str | Path) -> Path:
    """A text file with a ``.dcm`` name."""
    path = _folder(folder) / "not_dicom.dcm"
    path.write_text("This is a scanned referral letter, not a DICOM object.\n")
    return path


def truncated_dicom(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A valid CT file cut off in the middle of its header (long before Pixel Data)."""
    buffer = DicomBytesIO()
    dcmwrite(buffer, _ct(patient, "ODD-TRUNCATED"), enforce_file_format=True)
    data = buffer.getvalue()
    path = _folder(folder) / "truncated.dcm"
    path.write_bytes(data[: data.index(b"\xe0\x7f\x10\x00") // 2])
    return path


def unknown_transfer_syntax(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT whose file meta names a made-up transfer syntax (body in explicit VR LE)."""
    ds = _ct(patient, "ODD-UNKNOWN-TS")
    ds.file_meta.TransferSyntaxUID = UID(UNKNOWN_TRANSFER_SYNTAX)
    path = _folder(folder) / "unknown_transfer_syntax.dcm"
    return write_dataset(ds, path, implicit_vr=False, little_endian=True)


def secondary_capture(
    folder: str | Path, patient: SyntheticPatient | None = None, burned_in: str | None = None
) -> Path:
    """An SC image whose Burned In Annotation is absent (None), ``'YES'`` or ``'NO'``."""
    ds = secondary_capture_image(patient or make_patient(0), burned_in=burned_in)
    name = f"sc_burned_in_{(burned_in or 'absent').lower()}.dcm"
    return write_dataset(ds, _folder(folder) / name)


def ct_rle(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT with encapsulated RLE Lossless pixel data (pydicom's own encoder)."""
    ds = _ct(patient, "ODD-RLE")
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return write_dataset(ds, _folder(folder) / "ct_rle.dcm")


def ct_implicit_vr(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT in Implicit VR Little Endian."""
    ds = _ct(patient, "ODD-IMPLICIT", transfer_syntax=ImplicitVRLittleEndian)
    return write_dataset(ds, _folder(folder) / "ct_implicit_vr.dcm")


def ct_big_endian(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT in the retired Explicit VR Big Endian (OW values byte-swapped)."""
    ds = _ct(patient, "ODD-BIG-ENDIAN", transfer_syntax=ExplicitVRBigEndian)
    for tag in (0x7FE00010, 0x60003000, 0x50003000):
        raw = ds[tag].value
        ds[tag].value = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return write_dataset(ds, _folder(folder) / "ct_big_endian.dcm")
