"""pydicom's conversion of a raw sequence element into its items, read here over the bytes.

A CT slice's kept sequences (Referenced Image, Source Image) are converted when the rules first
read them (``ds[tag].value``): pydicom's ``convert_SQ`` wraps the value's bytes in a file object
and runs ``read_sequence``, ``read_sequence_item``, ``read_dataset`` and its element generator
(a ``read``, ``tell`` and decode per element), then ``Dataset.__getitem__`` and ``__setitem__``
set the element and pass Pixel Representation down the items, twice (~70 µs for the two).
:func:`converted_sequence` gives the very element ``ds[tag]`` gives, for the common form read as
deid.io.scan reads a top-level data set: one loop of ``struct.unpack_from`` over the headers, each
value a slice of the bytes.  The result is what pydicom makes for the same bytes: the same
``Sequence`` of ``Dataset`` items holding the same ``RawDataElement`` tuples (VR, length, value,
offset: a nested sequence of defined length stays raw, as pydicom leaves it; one of undefined
length is read the same way, as pydicom reads it at once), each item with the attributes
pydicom's reading gives it (encodings, parent encoding, ``is_undefined_length_sequence_item``,
``seq_item_tell``, ``file_tell``), and the same state of the data set after it (the element
replaced in place, Pixel Representation passed down by pydicom's own function); tests/io/
test_io_items.py compares them over random and hostile bytes.

The common form: Explicit VR Little Endian, a sequence of defined length whose items (of defined
length, or undefined ending with their delimiter) hold elements of known VRs that end inside their
item, nested at most 16 deep.  Anything else gives None and the caller converts the element with
pydicom's own ``ds[tag]``, as before: implicit VR or big endian, a VR pydicom does not know, a
length past the end, a delimiter where pydicom would stop early, an empty item, a Specific
Character Set inside an item, a private or pixel element, pydicom's conversion hooks changed, ...
"""

from __future__ import annotations

import struct
from collections.abc import MutableSequence

from pydicom import config
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import PIXEL_KEYWORDS, Dataset
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from deid.io.datasets import made_as_init, template_of
from deid.io.tagkeys import KEYS, tag_key

_HEAD = struct.Struct("<HH2sH")  # an element's tag, VR and 16-bit length
_ITEM_HEAD = struct.Struct("<HHI")  # an item's (or delimiter's) tag and 32-bit length
_U32 = struct.Struct("<I")
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_CHARSET = 0x00080005
# nested sequences of undefined length read here, at most (deeper ones: pydicom, whose recursion
# needs more stack: a hostile file nesting hundreds meets Python's recursion limit as before)
_DEEPEST = 16
# a VR's two bytes -> (its str as pydicom's generator gives it, whether its length is 32-bit)
_VRS = {vr.value.encode(): (vr.value, vr in EXPLICIT_VR_LENGTH_32)
        for vr in VR if len(vr.value) == 2}
# an item as Dataset.__init__ leaves it, before read_dataset gives its elements and encodings
_ITEM_DATASET = template_of(Dataset())

Encoding = str | MutableSequence[str]


class _Unusual(Exception):
    """Bytes this reader leaves to pydicom (which reads them, or fails, as it always has)."""


def converted_sequence(ds: Dataset, key: BaseTag) -> DataElement | None:
    """``ds[key]`` for a raw sequence of the common form (see the module), read by
    :func:`read_items`, with what ``Dataset.__getitem__`` does around its conversion; None for any
    other element, or a sequence this reader does not read: the caller converts it with
    pydicom's ``ds[key]``, as before (from its own frame: an error pydicom raises is raised where
    it was)."""
    raw = ds._dict[key]
    if type(raw) is not RawDataElement or not _plain_sequence(raw, key) \
            or not _default_conversion():
        return None
    # (Dataset.__getitem__: the data set's character set; convert_value and convert_SQ: as a list)
    encoding = ds.original_character_set or ds._character_set
    encodings = encoding or [default_encoding]
    if isinstance(encodings, str):
        encodings = [encodings]
    try:
        sequence = read_items(raw.value, encodings, raw.value_tell)
    except (_Unusual, RecursionError):  # (the latter: met by the engine's walk of a file nesting
        return None  # hundreds of sequences; pydicom, needing more stack, meets it as it did)
    # (convert_raw_data_element's element, set in place as Dataset.__setitem__ does for a
    # public tag that is no pixel keyword: no private creator to look up, no pixel cache to reset)
    elem = DataElement(raw.tag, "SQ", sequence, raw.value_tell, False, already_converted=True)
    ds._dict[key] = elem
    # __setitem__ and then __getitem__ each call this: the second call changes nothing (the same
    # Pixel Representation, converted by the first, passed to the same items)
    ds._set_pixel_representation(elem)
    return elem


def _plain_sequence(raw: RawDataElement, key: int) -> bool:
    """Whether ``raw`` is an Explicit VR Little Endian sequence of defined length, not empty, with
    all its bytes, under a public tag that is no pixel keyword."""
    value = raw.value
    return raw.VR == "SQ" and not raw.is_implicit_VR and raw.is_little_endian is True \
        and type(value) is bytes and 0 < raw.length == len(value) \
        and not (key >> 16) & 1 and key not in PIXEL_KEYWORDS


def _default_conversion() -> bool:
    """Whether pydicom converts raw elements its own way (no callback, hooks, or debug log)."""
    return config.data_element_callback is None and not config.debugging \
        and hooks.raw_element_vr is raw_element_vr \
        and hooks.raw_element_value is raw_element_value and not hooks.raw_element_kwargs


def read_items(value: bytes, encodings: list[str], offset: int) -> Sequence:
    """pydicom's ``convert_SQ(value, False, True, encodings, offset)``: the items of a sequence of
    defined length whose value is ``value`` (found at ``offset`` in its data set); raises
    _Unusual for anything but the common form."""
    sequence, _ = _sequence(value, 0, len(value), encodings, offset, 0)
    return sequence


def _sequence(data: bytes, position: int, end: int | None, encoding: Encoding,
              offset: int, depth: int) -> tuple[Sequence, int]:
    """pydicom's ``read_sequence`` over ``data`` from ``position``: up to ``end`` (defined
    length), or to its delimiter (``end`` None); the sequence and where it ends.  ``depth``: how
    many sequences of undefined length this one is nested in."""
    if depth > _DEEPEST:
        raise _Unusual
    items = []
    stop = len(data)
    while end is None or position < end:
        if position + 8 > stop:
            raise _Unusual  # (pydicom: an OSError, no tag to read)
        tag_group, tag_number, length = _ITEM_HEAD.unpack_from(data, position)
        tag = tag_group << 16 | tag_number
        if tag != _ITEM:
            if tag == _SEQUENCE_DELIMITER and end is None and not length:
                position += 8
                break
            raise _Unusual  # (pydicom reads any other tag as an item's, or stops early)
        item, after = _item(data, position + 8, length, encoding, depth)
        # (read_sequence_item, then read_sequence: where the item starts, in the data set)
        item.__dict__["seq_item_tell"] = item.__dict__["file_tell"] = position + offset
        items.append(item)
        position = after
    if end is not None and position != end:
        raise _Unusual  # an item past the sequence's end
    sequence = Sequence(items)
    sequence.is_undefined_length = end is None
    return sequence, position


def _item(data: bytes, start: int, length: int, encoding: Encoding,
          depth: int) -> tuple[Dataset, int]:
    """pydicom's ``read_dataset`` of an item whose value starts at ``start``: the item (but its
    offsets) and where it ends (after its delimiter when its length is undefined)."""
    stop = len(data)
    undefined = length == _UNDEFINED
    end = stop if undefined else start + length
    if end > stop or start + 6 > end:
        raise _Unusual  # past the end, or empty (pydicom's implicit VR guess looks past it)
    first_vr = data[start + 4:start + 6]
    if not (0x40 < first_vr[0] < 0x5B and 0x40 < first_vr[1] < 0x5B):
        raise _Unusual  # pydicom reads this item as implicit VR (its _is_implicit_vr)
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    new = tuple.__new__  # RawDataElement(...) without its Python-level __new__
    raw = RawDataElement
    head = _HEAD.unpack_from
    u32 = _U32.unpack_from
    vrs = _VRS
    keys = KEYS
    position = start
    while position < end:
        if position + 8 > end:
            raise _Unusual  # a header cut by the item's end
        group, number, vr_bytes, length = head(data, position)
        tag = group << 16 | number
        if group == 0xFFFE:
            if tag == _ITEM_DELIMITER and undefined and data[position + 4:position + 8] \
                    == b"\x00\x00\x00\x00":
                position += 8
                break
            raise _Unusual  # (pydicom stops a defined-length item there, or reads it as data)
        known = vrs.get(vr_bytes)
        if known is None or tag == _CHARSET:
            raise _Unusual  # a VR pydicom does not know (or reads as implicit); a character set
        vr, long = known
        if long:
            if position + 12 > end:
                raise _Unusual
            length = u32(data, position + 8)[0]
            value_tell = position + 12
        else:
            value_tell = position + 8
        key = keys.get(tag) or tag_key(tag)
        if length == _UNDEFINED:
            if vr != "SQ":
                raise _Unusual
            # (the generator reads it at once with read_sequence, offset 0, in the same encoding)
            sequence, position = _sequence(data, value_tell, None, encoding, 0, depth + 1)
            if position > end:
                raise _Unusual
            elements[key] = DataElement(key, vr, sequence, value_tell, is_undefined_length=True)
            continue
        position = value_tell + length
        if position > end:
            raise _Unusual  # a value past its item's end (pydicom reads on into what follows)
        value = data[value_tell:position] if length else empty_value_for_VR(vr, raw=True)
        elements[key] = new(raw, (key, vr, length, value, value_tell, False, True, True, False))
    else:  # (a defined length: the elements end at the item's end, as checked above)
        if undefined:
            raise _Unusual  # no delimiter before the end (pydicom stops there without one)
    item = made_as_init(Dataset, _ITEM_DATASET, _parent_encoding=encoding, _dict=elements,
                        _read_implicit=False, _read_little=True, _read_charset=encoding,
                        is_undefined_length_sequence_item=undefined)
    return item, position
