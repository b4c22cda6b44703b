"""pydicom's reading of a plain Explicit VR Little Endian Part 10 file, its top-level data set
scanned here over the bytes.

The first step of the streaming pass issue 12 names: one loop of ``struct.unpack_from`` over
the data set's tag/VR/length headers, each value a slice of the bytes, instead of pydicom's
``data_element_generator`` (a ``read``, ``tell`` and decode per element on a file object).  The
result is the very ``FileDataset`` ``pydicom.dcmread`` gives for the same bytes: the same
``RawDataElement`` tuples (VR, length, value, offset) in the same order, the same file meta,
preamble and encodings (tests/io/test_io_scan.py compares them, and the released bytes of both
reads, over synthetic objects).  Preamble and file meta are read by pydicom's own functions, and
so is a sequence of undefined length (its items nest: pydicom's ``read_sequence`` from the
sequence's offset).  One difference: a long Pixel Data value is a read-only ``memoryview`` into
the file's bytes (equal to the bytes pydicom gives); :func:`own_pixel_bytes` makes it ``bytes``
where something other than deid's encoder needs them.

Anything this scan does not read exactly as pydicom does gives ``None`` and the caller reads the
file with pydicom: another transfer syntax, a command set, an unknown VR, a truncated element,
an undefined length other than a sequence's, an item delimiter at the top level, an error.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import read_sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import AMBIGUOUS_VR, EXPLICIT_VR_LENGTH_32, VR
from pydicom.values import convert_string

from deid.io.datasets import made_as_init, template_of
from deid.io.tagkeys import KEYS, tag_key
from deid.io.text import raw_strings

_HEAD = struct.Struct("<HHHH")  # group, element, VR (its two bytes as one number), length
_U32 = struct.Struct("<I")
_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
_CHARSET_KEY = tag_key(_CHARSET)
_SYNTAX_KEY = tag_key(0x00020010)
_ITEM_DELIMITER = 0xFFFEE00D
_PIXEL_DATA = 0x7FE00010
_SOP_CLASS = 0x00080016
_REFERENCE_LISTS = (0x00081115, 0x00081200)  # Referenced Series, Other Studies: a reference list
#: (SOP Class UID, whether the object lists its references) -> which top-level private elements
#: (tag, VR) the rules remove unread, or None when none may be dropped (deid.engine.deidentifier)
PrivateDrop = Callable[[str, bool], "Callable[[int, str], bool] | None"]
# Pixel Data this long or longer is a view into the file's bytes, not a copy: copying half a
# megabyte costs a fresh allocation whose pages fault in (~0.14 ms of a CT slice's ~2 ms)
PIXEL_VIEW_MIN = 1 << 16
# a VR's two bytes (as one little-endian number) -> (its str as pydicom's generator gives it,
# whether its length is 32-bit)
_VRS = {int.from_bytes(vr.value.encode(), "little"): (vr.value, vr in EXPLICIT_VR_LENGTH_32)
        for vr in VR if len(vr.value) == 2}


@dataclass(frozen=True)
class Dropped:
    """Top-level private elements the scan left out because the rules remove them unread: their
    tags, and how many elements it kept before the first of them (the walk counts them there)."""

    tags: list[int]
    at: int


def scan_file(data: bytes, private_drop: PrivateDrop | None = None) -> FileDataset | None:
    """``pydicom.dcmread(io.BytesIO(data))`` for a plain Explicit VR Little Endian Part 10 file,
    or None when the file is anything else (the caller reads it with pydicom).

    With ``private_drop``, top-level private elements the rules remove and nothing reads are not
    made at all (a CT slice's ~200 of ~330 elements): asked once, at the first private element, by
    then the SOP class and the reference lists (group 0008) have been read; what was left out is
    :func:`dropped` of the dataset."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    try:
        return _scan(data, private_drop)
    except Exception:  # noqa: BLE001 (anything unusual: pydicom reads it, as before)
        return None


def _scan(data: bytes, private_drop: PrivateDrop | None) -> FileDataset | None:
    fileobj = io.BytesIO(data)
    preamble = data[:128]  # (scan_file checked the DICM prefix after it)
    meta = _file_meta(data)
    if meta is None:
        return None
    file_meta, start = meta
    syntax = _converted(file_meta, _SYNTAX_KEY)  # (as pydicom's file_meta.get: converted in place)
    if syntax is None or syntax.value != ExplicitVRLittleEndian:
        return None
    end_of_data = len(data)
    if start + 8 > end_of_data or data[start:start + 2] == b"\x00\x00":
        return None  # no data set, or a command set (group 0000): pydicom's own handling
    if end_of_data >= _UNDEFINED:
        return None  # (an undefined length is found below as a value past the end)
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    encoding: str | list[str] = default_encoding
    new = tuple.__new__  # RawDataElement(...) without its Python-level __new__
    raw = RawDataElement
    view = memoryview(data) if type(data) is bytes else None  # immutable bytes only
    drop: Callable[[int, str], bool] | None = None
    asked = private_drop is None  # whether private_drop was asked (or there is none)
    dropped: list[int] = []
    dropped_at = -1
    last = -1
    position = start
    head = _HEAD.unpack_from  # (a cut header raises struct.error: None, as any error)
    u32 = _U32.unpack_from
    vrs = _VRS
    keys = KEYS
    while position < end_of_data:
        group, number, vr_code, length = head(data, position)
        vr, long = vrs[vr_code]  # (a VR pydicom does not know raises KeyError: None)
        if long:
            length = u32(data, position + 8)[0]
            value_tell = position + 12
        else:
            value_tell = position + 8
        tag = group << 16 | number
        if tag <= last:  # out of order (or twice): pydicom's own handling (the drop needs order)
            return None
        last = tag
        position = value_tell + length
        if position > end_of_data:  # a value past the end, or an undefined length
            if length != _UNDEFINED or vr != "SQ":
                return None
            key = keys.get(tag) or tag_key(tag)
            fileobj.seek(value_tell)
            sequence = read_sequence(fileobj, False, True, length, encoding)
            elements[key] = DataElement(key, vr, sequence, value_tell, is_undefined_length=True)
            position = fileobj.tell()
            continue
        if group & 1:
            if not asked:
                asked = True
                drop = _ask(private_drop, elements)
            if drop is not None and drop(tag, vr):
                if not dropped:
                    dropped_at = len(elements)
                dropped.append(tag)
                continue
        if not length:
            value = empty_value_for_VR(vr, raw=True)
        elif length >= PIXEL_VIEW_MIN and tag == _PIXEL_DATA and view is not None:
            value = view[value_tell:position]  # see own_pixel_bytes
        else:
            value = data[value_tell:position]
        if tag == _CHARSET:
            encoding = convert_encodings(convert_string(value or b"", True))
        key = keys.get(tag) or tag_key(tag)
        elements[key] = new(raw, (key, vr, length, value, value_tell, False, True, True, False))
    if _ITEM_DELIMITER in elements:  # (at the top level): pydicom's own handling
        return None
    charset = elements.get(_CHARSET_KEY)
    if charset is not None and charset.VR != "CS":  # (a CS: see below)
        convert_encodings(convert_raw_data_element(charset).value)  # as pydicom's read_dataset
    fileobj.seek(end_of_data)
    # (pydicom's read_dataset gives a Dataset of the same elements, which FileDataset copies
    # and drops: made here from the elements directly)
    ds = made_as_init(FileDataset, _FILE_DATASET, _dict=elements, preamble=preamble,
                       file_meta=file_meta, buffer=fileobj)
    # pydicom's read_dataset converts Specific Character Set (and fails on a value it cannot
    # read), then dcmread's ds._character_set converts it again, in place: of a CS (read without
    # a character set, nor the data set) the same conversion, done once here
    _converted(ds, _CHARSET_KEY)
    ds.set_original_encoding(False, True, ds._character_set)
    if dropped:
        ds.__dict__[_DROPPED] = Dropped(dropped, dropped_at)
    return ds


def _file_meta(data: bytes) -> tuple[FileMetaDataset, int] | None:
    """pydicom's ``_read_file_meta_info`` of the group 0002 after the DICM prefix, scanned the
    same way (the very elements, encodings and first element converted as pydicom leaves them),
    and where the data set starts; None for anything unusual (pydicom reads the file): a VR it
    does not know (pydicom may read the group as implicit VR), an undefined length, elements out
    of order, a group that runs to the end of the file."""
    elements: dict[BaseTag, RawDataElement] = {}
    new = tuple.__new__
    position, end, last = 132, len(data), -1
    while True:
        header = _header(data, position, end)
        if header is None:
            return None  # no data set after the group, a cut header, a VR it does not know
        tag, vr, length, value_tell = header
        if tag >> 16 != 2:
            break
        if tag <= last:
            return None
        last = tag
        if length == _UNDEFINED or value_tell + length > end:
            return None
        value = data[value_tell:value_tell + length] if length else empty_value_for_VR(vr, raw=True)
        key = tag_key(tag)
        elements[key] = new(RawDataElement, (key, vr, length, value, value_tell, False, True, True,
                                             False))
        position = value_tell + length
    # (read_dataset's Dataset of them is copied and dropped; all are group 0002, as
    # FileMetaDataset checks)
    file_meta = made_as_init(FileMetaDataset, _FILE_META, _dict=elements)
    if elements:  # pydicom converts the first element (its issue #503 test)
        _converted(file_meta, next(iter(elements)))
    return file_meta, position


# a FileDataset of an Explicit VR Little Endian data set read from a BytesIO, before its elements,
# preamble, file meta and buffer are given (they replace these)
_FILE_DATASET = template_of(FileDataset(io.BytesIO(), {}, b"", FileMetaDataset(), False, True))
# the file meta of a Part 10 file as pydicom's _read_file_meta_info leaves it
_FILE_META = template_of(FileMetaDataset())
_FILE_META.update(_read_implicit=False, _read_little=True, _read_charset=default_encoding)
_DROPPED = "_deid_dropped_private"  # (an attribute pydicom neither reads nor writes)


def _converted(ds: Dataset, key: BaseTag) -> DataElement | None:
    """``ds.get(key)``: the element converted in place as pydicom's ``Dataset.__getitem__``
    converts a raw one, without its bookkeeping (~7 µs); None when absent.  For the file meta and
    Specific Character Set, which pydicom converts in the default character set: the element of a
    sequence or an ambiguous VR (pydicom's further steps) through ``ds[key]`` itself."""
    elem = ds._dict.get(key)
    if not isinstance(elem, RawDataElement):
        return elem
    converted = convert_raw_data_element(elem, encoding=default_encoding, ds=ds)
    if converted.VR == VR.SQ or converted.VR in AMBIGUOUS_VR:
        return ds[key]
    ds._dict[key] = converted
    return converted


def dropped(ds: Dataset) -> Dropped | None:
    """What :func:`scan_file` left out of ``ds`` (None: nothing)."""
    return ds.__dict__.get(_DROPPED)


def _ask(private_drop: PrivateDrop, elements: dict) -> Callable[[int, str], bool] | None:
    """private_drop's answer for the SOP class and reference lists read so far (None, dropping
    nothing, when the SOP Class UID is not one plain value)."""
    elem = elements.get(_SOP_CLASS)
    values = raw_strings(elem, "UI", None) if isinstance(elem, RawDataElement) and elem.VR == "UI" \
        else None
    if not values or len(values) != 1:
        return None
    return private_drop(values[0].strip(), any(tag in elements for tag in _REFERENCE_LISTS))


def _header(data: bytes, position: int, end: int) -> tuple[int, str, int, int] | None:
    """The Explicit VR Little Endian element header at ``position``: (tag, VR, length, where the
    value starts); None when it is cut short or its VR is not one pydicom knows."""
    if position + 8 > end:
        return None
    group, number, vr_code, length = _HEAD.unpack_from(data, position)
    known = _VRS.get(vr_code)
    if known is None:
        return None
    vr, long = known
    if not long:
        return group << 16 | number, vr, length, position + 8
    if position + 12 > end:
        return None
    return group << 16 | number, vr, _U32.unpack_from(data, position + 8)[0], position + 12


def own_pixel_bytes(ds: Dataset) -> None:
    """Give ``ds``'s Pixel Data its own bytes if the scan left it a view into the file's bytes:
    before anything but deid's encoder reads or changes it (pydicom's writer and converters and
    the pixel modules expect ``bytes``)."""
    elem = ds._dict.get(_PIXEL_DATA)
    if elem is None or not isinstance(elem.value, memoryview):
        return
    if isinstance(elem, RawDataElement):
        ds._dict[BaseTag(_PIXEL_DATA)] = elem._replace(value=elem.value.tobytes())
    else:  # converted by pydicom already (ds.PixelData): its value is still the view
        elem.value = elem.value.tobytes()
