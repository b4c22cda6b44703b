"""Read a DICOM file with an explicit policy: Part 10 files of known transfer syntax only."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import AllTransferSyntaxes

from deid.errors import ObjectError

KNOWN_TRANSFER_SYNTAXES = frozenset(AllTransferSyntaxes)


def read_object(source: Path | bytes) -> FileDataset:
    """Parse the header (element values stay raw until a rule needs them); errors carry no value."""
    try:
        if isinstance(source, bytes):
            import io

            ds = pydicom.dcmread(io.BytesIO(source))
        else:
            ds = pydicom.dcmread(source)
    except InvalidDicomError:
        raise ObjectError("not-dicom", "not a DICOM Part 10 file (no 'DICM' header); check what it is",
                          stage="read") from None
    except Exception as exc:  # pydicom raises many types on broken input
        raise ObjectError("unreadable", f"the file cannot be parsed ({exc.__class__.__name__}): "
                          "it may be truncated or corrupt; fetch it again from the source", stage="read") from None
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta is not None else ""
    if syntax not in KNOWN_TRANSFER_SYNTAXES:
        raise ObjectError("unknown-transfer-syntax",
                          "the transfer syntax is missing or unknown; convert the file to a standard one",
                          stage="read", path="(0002,0010)")
    try:
        _touch_all(ds)
    except Exception as exc:
        raise ObjectError("unreadable", f"the dataset is damaged ({exc.__class__.__name__}): it may be "
                          "truncated; fetch it again from the source", stage="read") from None
    return ds


def _touch_all(ds: FileDataset) -> None:
    """Fail now, not half-way through the rules, when the data ends early."""
    keys = list(ds._dict.keys())
    if keys:
        last = ds.get_item(keys[-1])
        if getattr(last, "is_raw", False) and last.length != 0xFFFFFFFF and last.value is not None \
                and len(last.value) < last.length:
            raise EOFError("the last element ends early")
    # a file cut at an element boundary parses; what it lacks is deid.checks.complete's to find
