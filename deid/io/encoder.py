"""Encode a dataset as Part 10 bytes, copying elements the rules did not touch as raw bytes.

For Explicit VR Little Endian syntaxes (native and every encapsulated one) raw elements are written
with one struct call each, and sequences and the file meta group by this module, instead of
pydicom's per-element writer; anything else (a value pydicom must encode, a data set pydicom must
convert, other syntaxes) goes through pydicom.  The bytes are the same as
``pydicom.dcmwrite(..., enforce_file_format=True)`` gives for the de-identified dataset (a
property test checks it over every VR: tests/io/test_io_encoder_properties.py).  What pydicom
cannot write either is an :class:`~deid.errors.ObjectError` ``value-does-not-encode`` with the
element's path, never a value.
"""

from __future__ import annotations

import struct
from copy import deepcopy
from functools import lru_cache

from pydicom import dcmwrite
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import AMBIGUOUS_VR, EXPLICIT_VR_LENGTH_32, VR

from deid.errors import ObjectError
from deid.io.reader import peek_value
from deid.io.scan import own_pixel_bytes
from deid.io.tagkeys import tag_key
from deid.io.text import raw_strings

_LONG_VRS = frozenset(EXPLICIT_VR_LENGTH_32)
# a number VR -> the size of one value: a raw value of another length cannot be read (pydicom's
# BytesLengthException): it is not copied out (a damaged header, or a VR changed by mistake)
_VALUE_SIZES = {"FL": 4, "FD": 8, "SL": 4, "SS": 2, "SV": 8, "UL": 4, "US": 2, "UV": 8}
# the text VRs: a NUL byte before a value's padding is no character of any character set DICOM
# uses, but an element header the value swallowed (a damaged length hides the elements after it)
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                       "TM", "UC", "UI", "UR", "UT"})
# a VR (every one but the ambiguous ones) -> its two bytes, whether its length is 32-bit, the size
# its value's length is a multiple of, whether it is text
_HEADS = {str(vr): (str(vr).encode(), vr in EXPLICIT_VR_LENGTH_32, _VALUE_SIZES.get(str(vr), 1),
                    str(vr) in _TEXT_VRS)
          for vr in VR if len(str(vr)) == 2}
_SHORT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<HH2sHI")
_ITEM = struct.Struct("<HHI")
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = tag_key(0x7FE00010)  # (the scan's key objects: found by identity)
_CHARSET = tag_key(0x00080005)  # Specific Character Set
_NATIVE = (False, True)  # (implicit VR, little endian) of the fast path
_META_TAGS = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013)
# (the file meta's tag, plain int: _by_number; the data set's, the scan's key object)
_UIDS_IN_META = ((0x00020002, tag_key(0x00080016)), (0x00020003, tag_key(0x00080018)))

# VRs pydicom writes from the value alone (not in the data set's character set): their elements
# of one short str or int value, read by the rules (a CT slice's Specific Character Set and Pixel
# Representation), are written as pydicom wrote them before: (tag, VR, value's type, value) ->
# the element's bytes (~10 µs each through pydicom's writer; at most _WRITTEN_MOST kept)
_PLAIN_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "IS", "SL", "SS", "TM", "UI", "UL", "US"})
_WRITTEN: dict[tuple[int, str, type, object], bytes] = {}
# of those, the VRs whose one value _plain_element writes as pydicom does: a string's padding
# (pydicom's write_string, write_UI), a number's struct format (write_numbers)
_PLAIN_STRINGS = {"AE": b" ", "AS": b" ", "CS": b" ", "DA": b" ", "DT": b" ", "TM": b" ",
                  "UI": b"\x00"}
_PLAIN_NUMBERS = {vr: struct.Struct(f"<{code}") for vr, code in
                  (("SL", "l"), ("SS", "h"), ("UL", "L"), ("US", "H"))}
_WRITTEN_MOST = 4096
Bytes = bytes | memoryview  # (a part of the encoded bytes: Pixel Data may be a view)
Where = tuple[tuple[int, int], ...]  # (sequence tag, item index) pairs from the top


def encode(ds: Dataset) -> bytes:
    """The Part 10 bytes of ``ds``; ``ObjectError("value-does-not-encode")`` when pydicom cannot
    write an element either."""
    fast, compressed = _syntax(UID(ds.file_meta.TransferSyntaxUID))
    if not fast:
        own_pixel_bytes(ds)
        return _pydicom_bytes(ds)
    order = sorted(ds._dict, key=int)  # (int: BaseTag compares in Python)
    if order and int(order[0]) < 0x00030000:
        for tag in ds._dict:
            if int(tag) < 0x00030000 and tag >> 16 in (0, 2):  # dcmwrite refuses these here
                raise _not_encodable((), tag)
    preamble = getattr(ds, "preamble", None) or b"\x00" * 128
    if len(preamble) != 128:
        raise ObjectError("value-does-not-encode", "the preamble is not 128 bytes long; report it "
                          "to the deid maintainers", stage="encode")
    parts = [preamble, b"DICM", _file_meta(ds)]
    _pixel_data_length(ds, compressed)
    _write_dataset(parts, ds, "iso8859", (), order)  # (which changes no tag: still the order)
    return b"".join(parts)  # (one copy of each value, Pixel Data's too)


@lru_cache(maxsize=64)
def _syntax(syntax: UID) -> tuple[bool, bool]:
    """Whether the fast path writes a data set of ``syntax`` (Explicit VR Little Endian, native
    or encapsulated, not deflated), and whether it is compressed: from the UID's value alone
    (pydicom's properties, ~2 µs), kept per value."""
    fast = (syntax.is_transfer_syntax and not syntax.is_implicit_VR and syntax.is_little_endian
            and not syntax.is_deflated)
    return fast, fast and syntax.is_compressed


def _pydicom_bytes(ds: Dataset) -> bytes:
    """dcmwrite for the syntaxes of no fast path (implicit VR, big endian, deflated, private)."""
    _refuse_undecodable(ds, ())
    buffer = DicomBytesIO()
    try:
        dcmwrite(buffer, ds, enforce_file_format=True)
    except Exception:  # noqa: BLE001 (pydicom raises many types; which element is what counts)
        syntax = UID(ds.file_meta.TransferSyntaxUID)
        encoding = _NATIVE
        if syntax.is_transfer_syntax:
            encoding = (syntax.is_implicit_VR, syntax.is_little_endian)
        raise _not_encodable(*_unwritable(ds, encoding, "iso8859", ())) from None
    return buffer.getvalue()


def _refuse_undecodable(ds: Dataset, where: Where) -> None:
    """``value-does-not-encode`` for a raw element no reader decodes (a VR DICOM does not define, a
    number of the wrong length), at any depth: dcmwrite copies the raw values of the file's own
    encoding as they came.  Each is converted aside; the data set is not changed."""
    for tag, elem in list(ds._dict.items()):
        if isinstance(elem, RawDataElement):
            raw = elem
            try:
                elem = convert_raw_data_element(raw, encoding=ds._character_set, ds=ds)
            except Exception:  # noqa: BLE001 (pydicom raises many types; the path is what counts)
                raise _not_encodable(where, tag) from None
            if elem.VR in _TEXT_VRS and isinstance(raw.value, bytes) and _nul_inside(raw.value):
                raise _swallowed(where, tag)
        if elem.VR == "SQ" and isinstance(elem.value, Sequence):
            for index, item in enumerate(elem.value):
                if isinstance(item, Dataset):
                    _refuse_undecodable(item, where + ((tag, index),))


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return _LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return _SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def _text(value: str, pad: bytes) -> bytes:
    data = value.encode("ascii")
    return data + pad if len(data) % 2 else data


def _file_meta(ds: Dataset) -> bytes:
    """Group 0002 as dcmwrite writes it with enforce_file_format: the six elements deid sets by
    this module, any other file meta through pydicom."""
    meta = ds.file_meta
    found = _by_number(meta)
    for meta_tag, ds_tag in _UIDS_IN_META:
        ours = _uid_value(ds, ds_tag)  # the data set wins (its element left raw, to be copied)
        theirs = found.get(meta_tag)
        if theirs is None or (ours and ours != theirs.value):
            meta = deepcopy(meta) if meta is ds.file_meta else meta
            meta[BaseTag(meta_tag)] = DataElement(meta_tag, "UI", ours)
            found = _by_number(meta)
    values = [found[tag].value for tag in _META_TAGS] \
        if len(found) == len(_META_TAGS) and all(tag in found for tag in _META_TAGS) else None
    if (values is not None and isinstance(values[0], bytes)
            and all(isinstance(value, str) and value and value.isascii() for value in values[1:])):
        text = [str(value) for value in values[1:]]
        body = b"".join((
            _element(0x00020001, "OB", _text_bytes(values[0])),
            _element(0x00020002, "UI", _text(text[0], b"\x00")),
            _element(0x00020003, "UI", _text(text[1], b"\x00")),
            _element(0x00020010, "UI", _text(text[2], b"\x00")),
            _element(0x00020012, "UI", _text(text[3], b"\x00")),
            _element(0x00020013, "SH", _text(text[4], b" ")),
        ))
        return _element(0x00020000, "UL", struct.pack("<I", len(body))) + body
    buffer = DicomBytesIO()
    meta = meta if meta is not ds.file_meta else deepcopy(meta)  # pydicom may add to what it writes
    try:
        write_file_meta_info(buffer, meta, enforce_standard=True)
    except Exception:  # noqa: BLE001
        raise ObjectError("value-does-not-encode", "the file meta information cannot be written; "
                          "report it to the deid maintainers", stage="encode",
                          path="(0002,0000)") from None
    return buffer.getvalue()


def _by_number(meta: Dataset) -> dict[int, DataElement | RawDataElement]:
    """The file meta's elements by plain ``int`` tag (a dict keyed by pydicom's ``BaseTag`` runs
    its ``__eq__`` in Python on every hit: ~0.3 µs, some 30 look-ups an object)."""
    return dict(zip(map(int, meta._dict), meta._dict.values()))


def _uid_value(ds: Dataset, tag: int) -> object:
    """:func:`~deid.io.reader.peek_value` of a UI element; one plain value of a raw one is read
    from its bytes (deid.io.text: as pydicom reads it, without its converters)."""
    elem = ds._dict.get(tag)
    if elem.__class__ is RawDataElement and elem.VR == "UI":
        values = raw_strings(elem, "UI", None)
        if values is not None and len(values) == 1:
            return values[0]
    return peek_value(ds, tag)


def _text_bytes(value: bytes) -> bytes:
    return value + b"\x00" if len(value) % 2 else value


def _pixel_data_length(ds: Dataset, compressed: bool) -> None:
    """As dcmwrite: Pixel Data has undefined length exactly when the syntax is compressed."""
    elem = ds._dict.get(_PIXEL_DATA)
    if elem is None:
        return
    if (isinstance(elem, RawDataElement) and elem.VR in ("OB", "OW")
            and (elem.length == _UNDEFINED) == compressed
            and isinstance(elem.value, (bytes, memoryview)) and len(elem.value) % 2 == 0):
        return  # what pydicom's conversion would not change: left raw, written as it came
    own_pixel_bytes(ds)
    try:
        ds[_PIXEL_DATA].is_undefined_length = compressed
    except Exception:  # noqa: BLE001
        raise _not_encodable((), _PIXEL_DATA) from None


def _write_dataset(parts: list[Bytes], ds: Dataset, charset: object, where: Where,
                   order: list[BaseTag] | None = None) -> None:
    """Append ``ds``'s elements, as pydicom writes them, to ``parts`` (``order``: its tags
    sorted, when the caller has them)."""
    if _converted_by_pydicom(ds):
        own_pixel_bytes(ds)
        # a data set pydicom converts as it writes (items of an UN sequence read as implicit VR,
        # items made by the rules, a changed character set): its own writer, exactly
        fp = _native_buffer()
        try:
            write_dataset(fp, ds, charset)
        except Exception:  # noqa: BLE001
            raise _not_encodable(*_unwritable(ds, _NATIVE, charset, where)) from None
        parts.append(fp.getvalue())
        return
    try:
        if _CHARSET in ds._dict:  # read without converting: the element is copied as it came
            charset = peek_value(ds, _CHARSET)
    except Exception:  # noqa: BLE001
        raise _not_encodable(where, 0x00080005) from None
    elements = ds._dict
    append = parts.append
    heads = _HEADS
    for tag in order if order is not None else sorted(elements, key=int):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        elem = elements[tag]
        if elem.__class__ is RawDataElement:
            _, vr, length, value, _, implicit, little, _, _ = elem
            if length != _UNDEFINED and value is not None and len(value) != length:
                raise _cut_short(where, tag)
            head = heads.get(vr)  # (None: an ambiguous VR, or not a VR)
            if ((value.__class__ is bytes or value.__class__ is memoryview) and head is not None
                    and length != _UNDEFINED and little and not implicit):
                vr_bytes, long, size, text = head
                if len(value) % size:
                    raise _not_encodable(where, tag)
                if text and b"\x00" in value and _nul_inside(value):
                    raise _swallowed(where, tag)
                if long:
                    append(_LONG.pack(tag >> 16, tag & 0xFFFF, vr_bytes, 0, len(value)))
                    append(value)
                    continue
                if len(value) <= 0xFFFF:
                    append(_SHORT.pack(tag >> 16, tag & 0xFFFF, vr_bytes, len(value)))
                    append(value)
                    continue
            fast = _raw_bytes(tag, elem)
            if fast is not None:
                append(fast)
                continue
        try:
            elem = ds.get_item(tag)  # as pydicom: an empty raw value is converted first
        except Exception:  # noqa: BLE001
            raise _not_encodable(where, tag) from None
        if elem.__class__ is RawDataElement and _unknown_vr(elem):
            raise _not_encodable(where, tag)  # (pydicom's writer would copy it as it came)
        if (not getattr(elem, "is_raw", False) and elem.VR == "SQ"
                and isinstance(elem.value, Sequence)):
            _write_sequence(parts, tag, elem, charset, where)
            continue
        append(_pydicom_element(tag, elem, charset, where))


def _pydicom_element(tag: int, elem: DataElement, charset: object, where: Where) -> bytes:
    """An element as pydicom's writer writes it; one of one plain value (:data:`_WRITTEN`)
    written once a process."""
    value = elem.value
    key = None
    if ((value.__class__ is int or value.__class__ is str and len(value) <= 64)
            and elem.VR in _PLAIN_VRS and not elem.is_undefined_length):
        key = (int(elem.tag), elem.VR, value.__class__, value)
        written = _WRITTEN.get(key)
        if written is not None:
            return written
        written = _plain_element(key[0], key[1], value)
        if written is not None:
            if len(_WRITTEN) < _WRITTEN_MOST:
                _WRITTEN[key] = written
            return written
    fp = _native_buffer()
    try:
        write_data_element(fp, elem, charset)
    except Exception:  # noqa: BLE001 (pydicom raises many types; the path is what counts)
        raise _not_encodable(where, tag) from None
    written = fp.getvalue()
    if key is not None and len(_WRITTEN) < _WRITTEN_MOST:
        _WRITTEN[key] = written
    return written


def _plain_element(tag: int, vr: str, value: int | str) -> bytes | None:
    """The bytes pydicom's writer writes for an element of one ASCII string or one binary number
    (:data:`_PLAIN_STRINGS`, :data:`_PLAIN_NUMBERS`), made without it; None for any other (or a
    number its VR cannot hold: pydicom's writer says why).  pydicom's string writer asks whether
    the value is a numpy array, which would load numpy (deferred in a run: deid.deferred_imports)."""
    if value.__class__ is str:
        pad = _PLAIN_STRINGS.get(vr)
        if pad is None or not value.isascii():  # type: ignore[union-attr]
            return None
        data = value.encode("ascii")  # type: ignore[union-attr]
        if len(data) % 2:
            data += pad
    else:
        number = _PLAIN_NUMBERS.get(vr)
        if number is None:
            return None
        try:
            data = number.pack(value)
        except struct.error:
            return None
    return _SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(data)) + data


def _native_buffer() -> DicomBytesIO:
    """An empty buffer pydicom's writer writes Explicit VR Little Endian into."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    return fp


def _converted_by_pydicom(ds: Dataset) -> bool:
    """Whether pydicom's writer would change the data set's elements as it writes them.  It
    converts them when the data set was read otherwise (implicit VR), when its character set
    changed, and when a program made it (an item the rules added); that changes something only
    for raw or ambiguous-VR elements, at any depth."""
    charset = ds._character_set if _CHARSET in ds._dict else ds._parent_encoding  # (as pydicom)
    if ds.original_encoding == _NATIVE and ds.original_character_set == charset:
        return False
    return _raw_or_ambiguous(ds)


def _raw_or_ambiguous(ds: Dataset) -> bool:
    for elem in ds._dict.values():
        if isinstance(elem, RawDataElement) or elem.VR in AMBIGUOUS_VR:
            return True
        if elem.VR == "SQ" and isinstance(elem.value, Sequence) and any(
                not isinstance(item, Dataset) or _raw_or_ambiguous(item) for item in elem.value):
            return True
    return False


def _raw_bytes(tag: int, elem: RawDataElement) -> bytes | None:
    """A raw element as pydicom writes it, or None when pydicom's writer must write it (an empty
    UN, an implicit or big-endian element, an undefined length, anything unusual)."""
    vr = elem.VR
    value = elem.value
    if (not elem.is_little_endian or elem.is_implicit_VR or vr not in _HEADS
            or elem.length == _UNDEFINED):
        return None  # (a VR DICOM does not define: pydicom's conversion says it cannot be read)
    if value is None:  # an empty value: pydicom converts it first, which only UN changes (its VR)
        if vr == "UN":
            return None
        value = b""
    elif not isinstance(value, bytes):
        return None
    if vr not in _LONG_VRS and len(value) > 0xFFFF:
        vr = "UN"  # as pydicom: a value too long for a 16-bit length is written as UN
    return _element(tag, vr, value)


def _write_sequence(parts: list[Bytes], tag: int, elem: DataElement, charset: object,
                    where: Where) -> None:
    body: list[Bytes] = []
    for index, item in enumerate(elem.value):
        if not isinstance(item, Dataset):
            raise _not_encodable(where, tag)
        item_parts: list[Bytes] = []
        _write_dataset(item_parts, item, charset, where + ((tag, index),))
        if getattr(item, "is_undefined_length_sequence_item", False):
            body.append(_ITEM.pack(0xFFFE, 0xE000, _UNDEFINED))
            body += item_parts
            body.append(_ITEM.pack(0xFFFE, 0xE00D, 0))
        else:
            body.append(_ITEM.pack(0xFFFE, 0xE000, _size(item_parts)))
            body += item_parts
    if elem.is_undefined_length:
        parts.append(_LONG.pack(tag >> 16, tag & 0xFFFF, b"SQ", 0, _UNDEFINED))
        parts += body
        parts.append(_ITEM.pack(0xFFFE, 0xE0DD, 0))
    else:
        parts.append(_LONG.pack(tag >> 16, tag & 0xFFFF, b"SQ", 0, _size(body)))
        parts += body


def _size(parts: list[Bytes]) -> int:
    return sum(map(len, parts))


# -- what cannot be written -------------------------------------------------------------------
def _unwritable(ds: Dataset, encoding: tuple[bool, bool], charset: object,
                where: Where) -> tuple[Where, int | None]:
    """The first element of ``ds`` pydicom cannot convert or write (searched only after a failure,
    so a refusal names an element path); the data set's own path when no single element fails."""
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = encoding
    try:
        charset = ds.get("SpecificCharacterSet", charset)
    except Exception:  # noqa: BLE001
        return where, 0x00080005
    for tag in sorted(ds._dict):
        try:
            elem = ds[tag]
            if " or " in str(elem.VR):  # an ambiguous VR a failed write left unresolved
                return where, tag
            if elem.VR == "SQ" and isinstance(elem.value, Sequence):
                for index, item in enumerate(elem.value):
                    found = _unwritable(item, encoding, charset, where + ((tag, index),))
                    if found[1] is not None:
                        return found
                continue
            write_data_element(fp, elem, charset)
        except Exception:  # noqa: BLE001
            return where, tag
    return where, None


def _unknown_vr(elem: RawDataElement) -> bool:
    """Whether a raw element read as explicit VR has two letters DICOM does not define as its VR
    (no reader decodes its value)."""
    vr = elem.VR
    return not elem.is_implicit_VR and isinstance(vr, str) and vr not in _HEADS \
        and " or " not in vr


def _nul_inside(value: bytes) -> bool:
    """Whether a text value holds a NUL byte before its padding (NULs and spaces at its end)."""
    return b"\x00" in value.rstrip(b"\x00 ")


def _swallowed(where: Where, tag: int) -> ObjectError:
    return _swallowing(where, tag, "a text value holds a NUL byte")


def _cut_short(where: Where, tag: int) -> ObjectError:
    return _swallowing(where, tag, "an element's length runs past the end of the item or "
                                   "sequence holding it")


def _swallowing(where: Where, tag: int, sign: str) -> ObjectError:
    """``unreadable``: ``sign`` shows an element that swallowed the elements after it."""
    path = "".join(f"{_tag(t)}[{i}]." for t, i in where) + _tag(tag)
    return ObjectError(
        "unreadable", f"{sign}, as when a damaged length makes it swallow the elements after it "
        "(their values would go out unread); fetch the object again from the source",
        stage="encode", path=path)


def _not_encodable(where: Where, tag: int | None) -> ObjectError:
    path = "".join(f"{_tag(t)}[{i}]." for t, i in where)
    path = path + _tag(tag) if tag is not None else path.rstrip(".")
    return ObjectError(
        "value-does-not-encode",
        "an element's value cannot be written in its VR (it breaks the VR's form or length, or "
        "the attributes that decide its VR are missing); correct the object at the source, or "
        "remove the element with a profile rule", stage="encode", path=path)


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
