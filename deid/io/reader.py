"""Read a DICOM file with an explicit policy: Part 10 files of known transfer syntax, and bare data
sets (no preamble, no file meta) that are plainly Implicit or Explicit VR Little Endian."""

from __future__ import annotations

import codecs
import io
import re
import struct
from functools import lru_cache
from pathlib import Path

import pydicom
from pydicom import config
from pydicom.charset import default_encoding, python_encoding
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    RE_VALID_UID,
    UID,
    AllTransferSyntaxes,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import AMBIGUOUS_VR, VR

from deid.errors import PATH_ATTRIBUTE, ObjectError
from deid.io.scan import PrivateDrop, scan_file
from deid.io.tagkeys import KEYS, tag_key
from deid.io.text import raw_strings

KNOWN_TRANSFER_SYNTAXES = frozenset(AllTransferSyntaxes)
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"  # a DICOMDIR; its records sit in (0004,1220)

# pydicom's warning about an invalid value quotes the value (an original UID, a name) on the
# terminal and in its log: values are read without that check (dciodvfy and the IOD check judge
# the output).
config.settings.reading_validation_mode = config.IGNORE

_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018
_MEDIA_CLASS = tag_key(0x00020002)  # (the scan's key object: found by identity)
_VRS = frozenset(vr.value.encode() for vr in VR if len(vr.value) == 2)
_VR_NAMES = frozenset(vr.value for vr in VR)  # (with pydicom's ambiguous 'US or SS' and the like)
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_TAG = struct.Struct("<HH")
_U16, _U32 = struct.Struct("<H"), struct.Struct("<I")


#: sequences nested deeper than this are refused (too-deeply-nested): no real object comes near
#: it (an SR's content tree: ~10), and each level costs every reader of the tree stack frames
MAX_NESTING = 64


def too_deeply_nested(path: str) -> ObjectError:
    """The refusal of an object nesting sequences deeper than :data:`MAX_NESTING` (``path``: the
    top-level sequence that does, when known)."""
    return ObjectError("too-deeply-nested", f"sequences are nested more than {MAX_NESTING} levels "
                       "deep; no real object does: the file is damaged or made to crash readers",
                       stage="read", path=path)


def read_object(source: Path | bytes, *, scan: bool = True,
                private_drop: PrivateDrop | None = None) -> FileDataset:
    """Parse the header (element values stay raw until a rule needs them); errors carry no value.

    Bytes of a plain Explicit VR Little Endian file are scanned by :func:`deid.io.scan.scan_file`
    (pydicom's very dataset, read faster; with ``private_drop``, without the private elements
    the rules remove unread); ``scan=False``, and anything else, reads with pydicom."""
    scanned = None
    try:
        ds = scanned = scan_file(source, private_drop) if scan and isinstance(source, bytes) else None
        if ds is None:
            ds = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
    except InvalidDicomError:
        ds = _read_bare(source if isinstance(source, bytes) else source.read_bytes())
    except RecursionError:  # pydicom reads sequences of undefined length at once, recursively
        raise too_deeply_nested("") from None
    except Exception as exc:  # pydicom raises many types on broken input
        raise ObjectError("unreadable", f"the file cannot be parsed ({exc.__class__.__name__}): "
                          "it may be truncated or corrupt; fetch it again from the source", stage="read") from None
    if scanned is None:  # (the scan reads only VRs DICOM defines: pydicom keeps any two letters)
        _refuse_unknown_vrs(ds)
    if _CHARSET_KEY in ds._dict:
        _refuse_unknown_character_set(ds)
    meta = getattr(ds, "file_meta", None)
    try:
        syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta is not None else ""
    except Exception:  # noqa: BLE001 - a damaged (0002,0010) pydicom cannot convert (an SQ's bytes)
        syntax = ""
    if syntax not in KNOWN_TRANSFER_SYNTAXES:
        raise ObjectError("unknown-transfer-syntax",
                          "the transfer syntax is missing or unknown; convert the file to a standard one",
                          stage="read", path="(0002,0010)")
    if _is_directory_class(meta) or 0x00041220 in ds:
        raise ObjectError("media-directory", "a DICOMDIR: the index of a CD, DVD or USB export, "
                          "listing its patients' names and IDs; it is not released: the objects it "
                          "lists are read from their own files", stage="read", path="(0002,0002)")
    try:
        _touch_all(ds)
    except Exception as exc:
        raise ObjectError("unreadable", f"the dataset is damaged ({exc.__class__.__name__}): it may be "
                          "truncated; fetch it again from the source", stage="read") from None
    return ds


def deferred_read_error(exc: BaseException) -> ObjectError | None:
    """``unreadable`` when ``exc`` was raised while pydicom read an element's stored bytes, later
    than :func:`read_object` (values stay raw until a rule needs them): a sequence whose items or
    delimiters are broken, a number of the wrong length, a VR DICOM does not define, at any depth.
    The path names the element deid asked for (the tag only: pydicom's message, which can quote
    the value, is dropped); None for any other exception (a bug)."""
    tb, tag = exc.__traceback__, None
    while tb is not None and tag is None:
        code = tb.tb_frame.f_code
        if code is _CONVERT_RAW:  # (pydicom's conversion of the raw element)
            tag = getattr(tb.tb_frame.f_locals.get("raw"), "tag", None)
        elif code is _GET_ITEM and isinstance(tb.tb_frame.f_locals.get("elem"), RawDataElement):
            tag = tb.tb_frame.f_locals.get("tag")  # (ds[tag] converting it in place)
        tb = tb.tb_next
    if tag is None:
        return None
    path = getattr(exc, PATH_ATTRIBUTE, "") or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return ObjectError("unreadable", "an element's value cannot be read "
                       f"({exc.__class__.__name__}): the file is corrupt; fetch it again from the "
                       "source", stage="read", path=path)


# the frames pydicom reads a raw value in: its conversion, and Dataset.__getitem__ converting the
# element in place (storing it, correcting an ambiguous VR)
_CONVERT_RAW = convert_raw_data_element.__code__
_GET_ITEM = Dataset.__getitem__.__code__


def _refuse_unknown_vrs(ds: Dataset) -> None:
    """``unreadable`` for a top-level element whose VR DICOM does not define (pydicom reads any
    two letters as a VR, and fails only when a rule converts the value)."""
    for key, elem in ds._dict.items():
        if elem.VR and elem.VR not in _VR_NAMES:
            raise ObjectError("unreadable", "an element's VR is not one DICOM defines: the file is "
                              "corrupt; fetch it again from the source", stage="read",
                              path=f"({key >> 16:04X},{key & 0xFFFF:04X})")


def _refuse_unknown_character_set(ds: Dataset) -> None:
    """``unreadable`` for a Specific Character Set naming a character set that neither DICOM nor
    Python knows (pydicom would read the text as ASCII: names in it could not be found)."""
    try:
        value = peek_value(ds, 0x00080005)
    except Exception:  # noqa: BLE001 (pydicom's conversion of a damaged value)
        value = None
    terms = (value,) if isinstance(value, str) else tuple(str(term) for term in value or ())
    if value is None or not _known_character_sets(terms):
        raise ObjectError("unreadable", "Specific Character Set names a character set DICOM does "
                          "not define, so its text cannot be read (nor checked for identity); "
                          "correct it at the source", stage="read", path="(0008,0005)")


@lru_cache(maxsize=256)
def _known_character_sets(terms: tuple[str, ...]) -> bool:
    """Whether pydicom reads every term as a character set (a defined term, one it corrects, as
    'ISO IR 100', or a Python codec's name), not falling back to ASCII."""
    for term in terms:
        term = term.strip()
        if not term or term in python_encoding:
            continue
        if _MISSPELT_IR.match(term):
            if "ISO_IR" + term[6:] in python_encoding:
                continue
            return False
        if _MISSPELT_2022.match(term):
            if "ISO 2022 IR " + term[12:] in python_encoding:
                continue
            return False
        try:
            codecs.lookup(term)
        except LookupError:
            return False
    return True


# pydicom's corrections of a misspelt term (pydicom.charset)
_MISSPELT_IR = re.compile("^ISO[^_]IR")
_MISSPELT_2022 = re.compile("^(?=ISO.2022.IR.)(?!ISO 2022 IR )")
_CHARSET_KEY = tag_key(0x00080005)


def _is_directory_class(meta: FileMetaDataset) -> bool:
    """Whether Media Storage SOP Class UID is a DICOMDIR's; one plain raw value read from its
    bytes (deid.io.text: as pydicom reads it), not converted in place (~10 µs, and nothing reads
    the original file meta again: the rules give the object a new one)."""
    elem = meta._dict.get(_MEDIA_CLASS)
    if elem.__class__ is RawDataElement and elem.VR == "UI":
        values = raw_strings(elem, "UI", None)
        if values is not None and len(values) < 2:
            return values == [MEDIA_STORAGE_DIRECTORY]
    return str(getattr(meta, "MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY


def _read_bare(data: bytes) -> FileDataset:
    """A bare data set (no preamble, no file meta) given a file meta group with the transfer syntax
    it was found in; anything else is ``not-dicom``."""
    syntax = bare_syntax(data)
    if syntax is None:
        raise ObjectError("not-dicom", "not a DICOM Part 10 file (no 'DICM' header) nor a bare "
                          "data set (Implicit or Explicit VR Little Endian, starting with group "
                          "0008, with SOP Class and SOP Instance UIDs); check what it is",
                          stage="read")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        raise ObjectError("unreadable", "the bare data set cannot be parsed "
                          f"({exc.__class__.__name__}): it may be truncated or corrupt; fetch it "
                          "again from the source", stage="read") from None
    if ds.original_encoding != (syntax == ImplicitVRLittleEndian, True):
        raise ObjectError("unreadable", "the bare data set changes its encoding after its first "
                          "elements; fetch it again from the source, or convert it to a Part 10 "
                          "file", stage="read")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    return ds


def bare_syntax(data: bytes) -> str | None:
    """Implicit or Explicit VR Little Endian when ``data`` is plainly a bare data set, else None.

    Strict, so that other files are not taken for DICOM: the elements from the start up to SOP
    Instance UID must all be in group 0008, in ascending order, of even defined length inside the
    file (explicit: with a known VR, UI for the two UIDs), and SOP Class UID and SOP Instance UID
    must both be there and be valid UIDs. A data set whose first elements include an undefined
    length sequence is not recognised (it stays ``not-dicom``).
    """
    # explicit first: an implicit length is never two capital letters, while an explicit VR and its
    # length can read as a (long, even) implicit length
    for syntax, implicit in ((ExplicitVRLittleEndian, False), (ImplicitVRLittleEndian, True)):
        if _leading_uids_are_valid(data, implicit):
            return syntax
    return None


def _leading_uids_are_valid(data: bytes, implicit: bool) -> bool:
    """True when the elements up to SOP Instance UID read as :func:`bare_syntax` requires."""
    position, last = 0, -1
    found: dict[int, bytes] = {}
    while position + 8 <= len(data) and len(found) < 2:
        group, element = _TAG.unpack_from(data, position)
        tag = group << 16 | element
        if group != 0x0008 or tag <= last or tag > _SOP_INSTANCE:
            return False
        if implicit:
            vr, length, header = b"UI", _U32.unpack_from(data, position + 4)[0], 8
        else:
            vr = data[position + 4:position + 6]
            if vr not in _VRS:
                return False
            if vr in _LONG_VRS:
                if position + 12 > len(data) or data[position + 6:position + 8] != b"\x00\x00":
                    return False
                length, header = _U32.unpack_from(data, position + 8)[0], 12
            else:
                length, header = _U16.unpack_from(data, position + 6)[0], 8
        start, end = position + header, position + header + length
        if length % 2 or end > len(data):
            return False  # also an undefined length (0xFFFFFFFF is odd)
        if tag in (_SOP_CLASS, _SOP_INSTANCE):
            value = data[start:end].rstrip(b"\x00 ")
            if vr != b"UI" or len(value) > 64 or not value.isascii():
                return False
            if not RE_VALID_UID.match(value.decode()):
                return False
            found[tag] = value
        position, last = end, tag
    return len(found) == 2


def _touch_all(ds: FileDataset) -> None:
    """Fail now, not half-way through the rules, when the data ends early."""
    keys = list(ds._dict.keys())
    if not keys:  # pydicom gives an empty data set when its first pass hit the end of the file
        raise EOFError("no element could be read")
    last = ds.get_item(keys[-1])
    if getattr(last, "is_raw", False) and last.length != 0xFFFFFFFF and last.value is not None \
            and len(last.value) < last.length:
        raise EOFError("the last element ends early")
    # a file cut at an element boundary parses; what it lacks is deid.checks.complete's to find


def peek_value(ds: Dataset, tag: int) -> object:
    """``ds[tag].value`` (None when absent) without converting the element in place: a raw
    element stays raw, so the encoder still copies its bytes instead of encoding its value."""
    elem = ds._dict.get(KEYS.get(tag, tag))  # (the scan's key object: found by identity)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        if (elem.value is None and elem.length != 0) or not elem.VR or elem.VR == "UN":
            # a deferred value, or a VR pydicom's conversion replaces (implicit VR, UN): converted
            # in place as ds[tag] does, so the element is written with the VR it reads as
            return ds[tag].value
        charset = default_encoding if tag == 0x00080005 else (
            ds.original_character_set or ds._character_set)
        converted = convert_raw_data_element(elem, encoding=charset, ds=ds)
        if converted.VR in AMBIGUOUS_VR or converted.VR == "SQ":
            return ds[tag].value  # pydicom's corrections of the element
        return converted.value
    return elem.value


def charset_of(ds: Dataset) -> str | list[str]:
    """The character set ``ds``'s raw text values are read in (as deid's peeks read them)."""
    return ds.original_character_set or ds._character_set


def peek_text(ds: Dataset, tag: int) -> str:
    """``str(ds.get(keyword, "") or "")`` without converting the element (see peek_value); a
    plain ASCII value is read from its bytes (deid.io.text), as pydicom reads it."""
    elem = ds._dict.get(KEYS.get(tag, tag))  # (the scan's key object: found by identity)
    if type(elem) is RawDataElement and tag != 0x00080005:
        values = raw_strings(elem, elem.VR, charset_of(ds))
        if values is not None and len(values) < 2:
            return values[0] if values else ""
    return str(peek_value(ds, tag) or "")
