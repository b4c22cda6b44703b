"""Encode a dataset as Part 10 bytes, copying elements the rules did not touch as raw bytes.

For Explicit VR Little Endian syntaxes (native and every encapsulated one) raw elements are written
with one struct call each, and sequences and the file meta group by this module, instead of
pydicom's per-element writer; anything else (a value pydicom must encode, other syntaxes) goes
through pydicom.  The bytes are the same as ``pydicom.dcmwrite(..., enforce_file_format=True)``
gives for the de-identified dataset (a test checks it).
"""

from __future__ import annotations

import struct

from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence
from pydicom.uid import UID

_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_SHORT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<HH2sHI")
_ITEM = struct.Struct("<HHI")
_UNDEFINED = 0xFFFFFFFF


def encode(ds: Dataset) -> bytes:
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if not syntax.is_transfer_syntax or syntax.is_implicit_VR or not syntax.is_little_endian or syntax.is_deflated:
        buffer = DicomBytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        return buffer.getvalue()
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\x00" * 128 + b"DICM")
    fp.write(_file_meta(ds.file_meta))
    _write_dataset(fp, ds, ds.get("SpecificCharacterSet", "iso8859"))
    return fp.getvalue()


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return _LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return _SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def _text(value: str, pad: bytes) -> bytes:
    data = value.encode("ascii")
    return data + pad if len(data) % 2 else data


def _file_meta(meta: Dataset) -> bytes:
    """Group 0002 as pydicom writes it with enforce_standard (the elements deid sets)."""
    body = b"".join((
        _element(0x00020001, "OB", bytes(meta.FileMetaInformationVersion)),
        _element(0x00020002, "UI", _text(str(meta.MediaStorageSOPClassUID), b"\x00")),
        _element(0x00020003, "UI", _text(str(meta.MediaStorageSOPInstanceUID), b"\x00")),
        _element(0x00020010, "UI", _text(str(meta.TransferSyntaxUID), b"\x00")),
        _element(0x00020012, "UI", _text(str(meta.ImplementationClassUID), b"\x00")),
        _element(0x00020013, "SH", _text(str(meta.ImplementationVersionName), b" ")),
    ))
    return _element(0x00020000, "UL", struct.pack("<I", len(body))) + body


def _write_dataset(fp: DicomBytesIO, ds: Dataset, charset: object) -> None:
    charset = ds.get("SpecificCharacterSet", charset)
    elements = ds._dict
    write = fp.write
    for tag in sorted(elements):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        elem = elements[tag]
        vr = elem.VR
        if getattr(elem, "is_raw", False):
            if (elem.is_little_endian and not elem.is_implicit_VR and vr is not None and len(vr) == 2
                    and elem.length != _UNDEFINED):
                value = elem.value if elem.value is not None else b""  # an empty value is read as None
                if vr in _LONG_VRS or len(value) <= 0xFFFF:
                    write(_element(tag, vr, value))
                    continue
            elem = ds[tag]  # implicit VR, big endian, undefined length: let pydicom decode it
            if elem.VR == "SQ" and isinstance(elem.value, Sequence):
                _write_sequence(fp, tag, elem, charset)
                continue
        elif vr == "SQ" and isinstance(elem.value, Sequence):
            _write_sequence(fp, tag, elem, charset)
            continue
        write_data_element(fp, elem, charset)


def _write_sequence(fp: DicomBytesIO, tag: int, elem, charset: object) -> None:
    undefined = elem.is_undefined_length
    start = fp.tell()
    fp.write(_LONG.pack(tag >> 16, tag & 0xFFFF, b"SQ", 0, _UNDEFINED))
    for item in elem.value:
        item_start = fp.tell()
        fp.write(_ITEM.pack(0xFFFE, 0xE000, _UNDEFINED))
        _write_dataset(fp, item, charset)
        if getattr(item, "is_undefined_length_sequence_item", False):
            fp.write(_ITEM.pack(0xFFFE, 0xE00D, 0))
        else:
            _patch_length(fp, item_start + 4)
    if undefined:
        fp.write(_ITEM.pack(0xFFFE, 0xE0DD, 0))
    else:
        _patch_length(fp, start + 8)


def _patch_length(fp: DicomBytesIO, at: int) -> None:
    end = fp.tell()
    fp.seek(at)
    fp.write(struct.pack("<I", end - at - 4))
    fp.seek(end)
