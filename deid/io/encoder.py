"""Encode a dataset as Part 10 bytes, copying elements the rules did not touch as raw bytes.

For Explicit VR Little Endian syntaxes (native and every encapsulated one) untouched elements are
written with one struct call each instead of pydicom's per-element writer; anything else (changed
elements, sequences, undefined lengths, other syntaxes) goes through pydicom.  The bytes are the
same as ``pydicom.dcmwrite(..., enforce_file_format=True)`` would give (a test checks it).
"""

from __future__ import annotations

import struct

from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import UID

_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_SHORT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<HH2sHI")


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
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    _write_dataset(fp, ds)
    return fp.getvalue()


def _write_dataset(fp: DicomBytesIO, ds: Dataset) -> None:
    charset = ds.get("SpecificCharacterSet", "iso8859")
    elements = ds._dict
    write = fp.write
    for tag in sorted(elements):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        elem = elements[tag]
        vr = elem.VR
        if (
            getattr(elem, "is_raw", False)
            and elem.is_little_endian
            and not elem.is_implicit_VR
            and vr is not None
            and len(vr) == 2
            and elem.length != 0xFFFFFFFF
            and elem.value is not None
        ):
            value = elem.value
            if vr in _LONG_VRS:
                write(_LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)))
            elif len(value) <= 0xFFFF:
                write(_SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(value)))
            else:
                write_data_element(fp, elem, charset)
                continue
            write(value)
        else:
            write_data_element(fp, elem, charset)
