"""Property test: a sequence's items read over its bytes (deid.io.items) are exactly what pydicom
reads, and ``deid run``'s pipeline releases the same bytes with that reader as without it.

Hypothesis writes sequence values the way files hold them and the ways they break: items of
defined or undefined length, nested sequences (defined or undefined, to two levels), elements of
any VR with right or wrong lengths, unknown or lower-case VRs, delimiters where they do not belong
or missing, a character set or Pixel Representation inside an item, trailing bytes, a value cut
anywhere; the sequence under a public, private or pixel tag, in a data set with or without a
character set and Pixel Representation.  For each, ``converted_sequence(ds, key) or ds[key]`` (as
the engine reads it) and pydicom's ``ds[key]`` give the same outcome: the same exception, or the
same element (tag, VR, offsets, the items' elements and every attribute, at every depth, nested
raw sequences converted by each in turn, then every value of the items), the same warnings, and
the same data set after (its elements, their types, its attributes).  Then whole objects (SR, RT
Structure Set, SEG, CT) with bytes changed inside their sequences go through the pipeline with the
reader and with pydicom's ``ds[key]`` only: the same released bytes and facts, or the same
quarantine reason.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import MutableSequence
from pathlib import Path
from typing import Any
from unittest import mock

import pydicom
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom import dcmwrite
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.hooks import hooks, raw_element_value
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from deid.io import items
from deid.io.items import converted_sequence
from deid.io.scan import scan_file
from deid.keys import SecretKey
from deid.outcome import Written
from deid.pipeline import Pipeline
from deid.profile.loader import load_profile
from deid.profile.model import Profile
from deid.synthetic import ct_slice, landmark_sr, make_patient, rtss, segmentation

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
EXAMPLES = settings(max_examples=400, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
KEY = SecretKey(bytes(range(32)))
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}
ITEM, ITEM_END, SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD)
# (tag, its VR): what items hold, and what they should not
ITEM_ELEMENTS = (
    ((0x0008, 0x1150), b"UI"), ((0x0008, 0x1155), b"UI"), ((0x0008, 0x0100), b"SH"),
    ((0x0008, 0x0104), b"LO"), ((0x0010, 0x0010), b"PN"), ((0x0040, 0xA160), b"UT"),
    ((0x0028, 0x0103), b"US"), ((0x0028, 0x0106), b"US"), ((0x0018, 0x0050), b"DS"),
    ((0x0020, 0x0013), b"IS"), ((0x0028, 0x0010), b"US"), ((0x0009, 0x1001), b"OB"),
    ((0x0009, 0x0010), b"LO"), ((0x0020, 0x9157), b"UL"), ((0x0040, 0xA124), b"UI"),
    ((0x0070, 0x0022), b"FL"),
)
ODD_ELEMENTS = (((0x0008, 0x0005), b"CS"), ((0xFFFE, 0xE000), b"OB"), ((0x0008, 0x0000), b"UL"))
ODD_VRS = (b"XX", b"ab", b"\x00\x00", b"U ", b"OB", b"SQ", b"UN", b"AT", b"UT")
SEQUENCE_TAGS = ((0x0008, 0x1199), (0x0040, 0xA730), (0x0008, 0x1115), (0x0009, 0x1010))
TOP_TAGS = (0x00081140, 0x00082112, 0x00400275, 0x00091010, 0x7FE00008, 0x00081115)


def _element(tag: tuple[int, int], vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """An Explicit VR Little Endian element's bytes (``length``: the length field, if not the
    value's)."""
    length = len(value) if length is None else length
    head = struct.pack("<HH", *tag) + vr
    if vr in LONG_VRS:
        return head + b"\x00\x00" + struct.pack("<I", length & 0xFFFFFFFF) + value
    return head + struct.pack("<H", length & 0xFFFF) + value


def _header(tag: tuple[int, int], length: int) -> bytes:
    return struct.pack("<HHI", *tag, length & 0xFFFFFFFF)


@st.composite
def _lengths(draw: st.DrawFn, size: int, hostile: bool) -> int | None:
    """The value's own length; when hostile, sometimes a wrong one."""
    if not hostile or draw(st.integers(0, 9)):
        return None
    return draw(st.sampled_from((size + 1, size - 1, size + 2, 0, 0xFFFFFFFF, 3, 0x10000)))


@st.composite
def _values(draw: st.DrawFn, vr: bytes) -> bytes:
    size = draw(st.sampled_from((0, 1, 2, 3, 4, 6, 8, 11, 16)))
    if vr in (b"UI", b"DS", b"IS"):
        return bytes(48 + b % 10 if b % 7 else 46 for b in draw(st.binary(min_size=size,
                                                                         max_size=size)))
    if vr in (b"SH", b"LO", b"PN", b"UT", b"CS"):
        return bytes(b % 26 + 65 if b % 5 else 92 for b in draw(st.binary(min_size=size,
                                                                          max_size=size)))
    return draw(st.binary(min_size=size, max_size=size))


@st.composite
def sequence_values(draw: st.DrawFn, hostile: bool, depth: int = 0) -> bytes:
    """A sequence's value (its items), as files hold it or (hostile) broken."""
    out = b""
    for _ in range(draw(st.integers(0 if depth else 1, 3))):
        out += draw(_items(hostile, depth))
    if hostile and not draw(st.integers(0, 11)):  # something after the items
        out += draw(st.sampled_from((_header(SEQUENCE_END, 0), _header(ITEM_END, 0), b"\x00",
                                     b"\xfe\xff\x00\xe0", _element((0x0008, 0x0100), b"SH",
                                                                   b"AB"))))
    return out


@st.composite
def _items(draw: st.DrawFn, hostile: bool, depth: int) -> bytes:
    body = b"".join(draw(_item_elements(hostile, depth)))
    kind = draw(st.sampled_from(("defined",) * 6 + ("undefined",) * 3 + ("odd",) * hostile))
    if kind == "defined":
        return _header(ITEM, len(body)) + body
    if kind == "undefined":
        end = draw(st.sampled_from((_header(ITEM_END, 0),) * 5 + (
            b"", _header(ITEM_END, 4), _header(SEQUENCE_END, 0)) * hostile))
        return _header(ITEM, 0xFFFFFFFF) + body + end
    tag = draw(st.sampled_from((ITEM_END, SEQUENCE_END, (0x0008, 0x0100), (0xFFFE, 0xE001))))
    return _header(tag, draw(st.sampled_from((len(body), 0, len(body) + 2)))) + body


@st.composite
def _item_elements(draw: st.DrawFn, hostile: bool, depth: int) -> list[bytes]:
    elements = []
    chosen = draw(st.lists(st.sampled_from(ITEM_ELEMENTS + ODD_ELEMENTS * hostile),
                           min_size=0 if hostile else 1, max_size=4))
    if not hostile or draw(st.booleans()):
        chosen = sorted(chosen)  # (in order, as files hold them)
    for tag, vr in chosen:
        if hostile and not draw(st.integers(0, 9)):
            vr = draw(st.sampled_from(ODD_VRS))
        value = draw(_values(vr))
        elements.append(_element(tag, vr, value, draw(_lengths(len(value), hostile))))
    if depth < 2 and draw(st.integers(0, 2)) == 0:  # a nested sequence
        nested = draw(sequence_values(hostile, depth + 1))
        tag = draw(st.sampled_from(SEQUENCE_TAGS))
        if draw(st.booleans()):
            elements.append(_element(tag, b"SQ", nested, draw(_lengths(len(nested), hostile))))
        else:
            end = draw(st.sampled_from((_header(SEQUENCE_END, 0),) * 4 + (b"",) * hostile))
            elements.append(_element(tag, b"SQ", nested + end, 0xFFFFFFFF))
        if draw(st.booleans()):
            elements.sort()  # (by tag, as files hold them: the header's bytes order with it)
    if hostile and draw(st.integers(0, 14)) == 0:
        elements.append(_header(ITEM_END, 0))  # a delimiter inside a defined-length item
    return elements


@st.composite
def data_sets(draw: st.DrawFn) -> tuple[bytes, int]:
    """A Part 10 file (Explicit VR Little Endian) holding one sequence of those values, and its
    tag."""
    ds = Dataset()
    charset = draw(st.sampled_from((None, "ISO_IR 100", "ISO_IR 192", "", "\\ISO 2022 IR 87")))
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.9.1"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    # then, after those group 0008 elements, raw ones in tag order: the sequence among them
    tag = draw(st.sampled_from(TOP_TAGS))
    hostile = draw(st.booleans())
    value = draw(sequence_values(hostile))
    if hostile and not draw(st.integers(0, 5)):
        value = value[: draw(st.integers(0, len(value)))]  # cut anywhere
    more = {0x00100010: _element((0x0010, 0x0010), b"PN", b"DOE^JANE"),
            tag: _element((tag >> 16, tag & 0xFFFF), b"SQ", value)}
    representation = draw(st.sampled_from((None, b"\x00\x00", b"\x01\x00", b"\x01", b"")))
    if representation is not None:
        more[0x00280103] = _element((0x0028, 0x0103), b"US", representation)
    return buffer.getvalue() + b"".join(more[t] for t in sorted(more)), tag


def _read(data: bytes) -> Dataset:
    ds = scan_file(data)
    return ds if ds is not None else pydicom.dcmread(io.BytesIO(data))


def _outcome(ds: Dataset, key: int, get: Any) -> tuple[Any, list[str]]:
    """What ``get(ds, key)`` gives (or raises), and pydicom's warnings meanwhile."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            elem = get(ds, key)
        except Exception as exc:  # noqa: BLE001 (the same refusal is what is compared)
            elem = ("raised", type(exc), str(exc))
    return elem, [str(w.message) for w in caught]


def _pydicom_get(ds: Dataset, key: int) -> DataElement:
    return ds[key]


def _reader_get(ds: Dataset, key: int) -> DataElement:
    """As deid.engine.review reads a sequence: this reader's element, else pydicom's."""
    return converted_sequence(ds, key) or ds[key]


def _state(x: Any) -> Any:
    """Everything a data set, element or sequence holds, as plain comparable values."""
    if isinstance(x, Dataset):
        attributes = {name: _state(value) for name, value in x.__dict__.items()
                      if name not in ("_dict", "buffer", "file_meta")}
        return ("dataset", type(x), [(int(k), type(e), _state(e)) for k, e in x._dict.items()],
                attributes)
    if isinstance(x, RawDataElement):
        return ("raw", tuple(bytes(v) if isinstance(v, memoryview) else v for v in x))
    if isinstance(x, DataElement):
        fields = {name: value for name, value in x.__dict__.items() if name != "_value"}
        return ("element", fields, _state(x._value))
    if isinstance(x, Sequence):
        fields = {name: value for name, value in x.__dict__.items() if name != "_list"}
        return ("sequence", fields, [_state(item) for item in x])
    if isinstance(x, MutableSequence | tuple):  # (a list, a MultiValue)
        return (type(x), [_state(v) for v in x])
    if isinstance(x, float) and math.isnan(x):
        return (type(x), "nan")  # (equal to itself here)
    return (type(x), x)


Seen = list[tuple[int, int, str]]  # each raw sequence converted: its tag, length, who read it


def _same_conversion(mine: Dataset, theirs: Dataset, key: int, seen: Seen) -> None:
    """This reader's ``mine[key]`` and pydicom's ``theirs[key]`` give the same, and leave their data
    sets the same; then each nested raw sequence of the items, converted by each in turn."""
    raw = mine._dict[key]
    taken: list[bool] = []
    real_read = items.read_items

    def spy(*args: Any) -> Sequence:
        taken.append(False)
        found = real_read(*args)
        taken[-1] = True
        return found

    with mock.patch.object(items, "read_items", spy):
        got, warned = _outcome(mine, key, _reader_get)
    expected, expected_warned = _outcome(theirs, key, _pydicom_get)
    seen.append((int(key), raw.length, "read here" if taken and taken[-1] else "pydicom"))
    assert _state(got) == _state(expected)
    assert warned == expected_warned
    if taken and taken[-1]:
        assert not warned and isinstance(raw, RawDataElement)
    assert _state(mine) == _state(theirs)
    if isinstance(got, DataElement) and isinstance(got.value, Sequence):
        for mine_item, their_item in zip(got.value, expected.value, strict=True):
            for nested, elem in list(mine_item._dict.items()):
                if isinstance(elem, RawDataElement) and elem.VR == "SQ":
                    _same_conversion(mine_item, their_item, nested, seen)
        # and every value of the items, converted by pydicom (with the items' encodings and
        # Pixel Representation): the same values, or the same refusal
        for mine_item, their_item in zip(got.value, expected.value, strict=True):
            for element in list(mine_item._dict):
                assert _state(_outcome(mine_item, element, _pydicom_get)) == \
                    _state(_outcome(their_item, element, _pydicom_get))
        assert _state(mine) == _state(theirs)


@EXAMPLES
@given(made=data_sets())
def test_the_items_read_here_are_those_pydicom_reads(made: tuple[bytes, int]) -> None:
    data, tag = made
    mine, theirs = _read(data), _read(data)
    key = next(k for k in mine._dict if k == tag)
    seen: Seen = []
    _same_conversion(mine, theirs, key, seen)
    event(seen[0][2])
    nested = {who for _, _, who in seen[1:]}
    event(f"nested: {'read here' if 'read here' in nested else 'none read here'}")


@pytest.mark.parametrize("index", range(3))
def test_the_common_form_is_read_here_not_by_pydicom(index: int) -> None:
    """A CT slice's sequences and an SR's nested content take this reader (else the property
    above says little about them)."""
    p = make_patient(index + 1)
    images = [ct_slice(p, series_uid=p.series_uid("P"), index=i, size=16) for i in range(2)]
    ds = (images[0], landmark_sr(p, images), rtss(p, images))[index]
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    mine, theirs = _read(buffer.getvalue()), _read(buffer.getvalue())
    seen: Seen = []
    for key, elem in list(mine._dict.items()):
        if isinstance(elem, RawDataElement) and elem.VR == "SQ":
            _same_conversion(mine, theirs, key, seen)
    # (pydicom reads a private sequence, whose creator it looks up, and an empty one)
    common = [who for tag, length, who in seen if length and not (tag >> 16) & 1]
    assert len(common) >= 3 and set(common) == {"read here"}


def _nested(levels: int) -> bytes:
    """A sequence's value: one item, holding a sequence of undefined length, ``levels`` deep."""
    value = _header(ITEM, 16) + _element((0x0008, 0x1155), b"UI", b"1.2.3.4\x00")
    for _ in range(levels):
        nested = _element((0x0008, 0x1199), b"SQ", value + _header(SEQUENCE_END, 0), 0xFFFFFFFF)
        value = _header(ITEM, len(nested)) + nested
    return value


@pytest.mark.parametrize(("levels", "who"), [(16, "read here"), (17, "pydicom"),
                                             (300, "pydicom")])
def test_deep_nesting_is_left_to_pydicom(levels: int, who: str) -> None:
    """Sequences of undefined length nested deeper than a file needs are pydicom's (whose
    recursion meets Python's limit where it always has)."""
    p = make_patient(1)
    buffer = io.BytesIO()
    dcmwrite(buffer, ct_slice(p, series_uid=p.series_uid("P"), index=0, size=16),
             enforce_file_format=True)
    data = buffer.getvalue()
    elem = next(e for e in _read(data)._dict.values() if e.tag == 0x00081140)
    data = data[:elem.value_tell - 12] + _element((0x0008, 0x1140), b"SQ", _nested(levels)) \
        + data[elem.value_tell + elem.length:]
    mine, theirs = _read(data), _read(data)
    seen: Seen = []
    key = next(k for k in mine._dict if k == 0x00081140)
    _same_conversion(mine, theirs, key, seen)
    assert seen[0][2] == who


def test_pydicoms_own_test_files_read_as_pydicom_reads_them() -> None:
    """Real files of many makers (pydicom's test files): every raw sequence, at any depth, the
    same by this reader as by pydicom."""
    import pydicom.data

    seen: Seen = []
    for path in sorted((Path(pydicom.data.__file__).parent / "test_files").rglob("*.dcm")):
        try:
            mine, theirs = (pydicom.dcmread(path, force=True) for _ in range(2))
        except Exception:  # noqa: BLE001,S112 (a file pydicom cannot read says nothing here)
            continue
        for key, elem in list(mine._dict.items()):
            if isinstance(elem, RawDataElement) and elem.VR == "SQ":
                _same_conversion(mine, theirs, key, seen)
    assert [who for _, _, who in seen].count("read here") >= 20


def test_changed_conversion_hooks_leave_the_sequence_to_pydicom() -> None:
    p = make_patient(1)
    buffer = io.BytesIO()
    dcmwrite(buffer, ct_slice(p, series_uid=p.series_uid("P"), index=0, size=16),
             enforce_file_format=True)
    ds = _read(buffer.getvalue())
    key = next(k for k, e in ds._dict.items() if e.VR == "SQ")
    calls = []

    def hook(raw: RawDataElement, data: dict, **kwargs: Any) -> None:
        calls.append(raw.tag)
        raw_element_value(raw, data, **kwargs)

    with mock.patch.object(hooks, "raw_element_value", hook), \
            mock.patch.object(items, "read_items", side_effect=AssertionError("read here")):
        assert converted_sequence(ds, key) is None
        ds[key]  # noqa: B018 (pydicom's conversion, with the hook)
    assert key in calls


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("vghtpe")


@st.composite
def changed_objects(draw: st.DrawFn) -> bytes:
    """A synthetic object's file with a few bytes changed inside one of its sequences."""
    p = make_patient(draw(st.integers(1, 3)))
    images = [ct_slice(p, series_uid=p.series_uid("P"), index=i, size=16) for i in range(2)]
    kind = draw(st.sampled_from(("ct", "sr", "rtss", "seg")))
    ds = {"ct": lambda: images[0], "sr": lambda: landmark_sr(p, images),
          "rtss": lambda: rtss(p, images), "seg": lambda: segmentation(p, images)}[kind]()
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    data = bytearray(buffer.getvalue())
    scanned = scan_file(bytes(data))
    assert scanned is not None
    spans = [(e.value_tell, e.length) for e in scanned._dict.values()
             if isinstance(e, RawDataElement) and e.VR == "SQ" and e.length]
    start, length = draw(st.sampled_from(spans))
    for _ in range(draw(st.integers(0, 3))):
        at = start + draw(st.integers(0, length - 1))
        data[at] = draw(st.sampled_from((0x00, 0xFF, 0xFE, 0xE0, 0x0D, 0x41, data[at] ^ 1)))
    return bytes(data)


@settings(max_examples=150, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=changed_objects())
def test_the_pipeline_releases_the_same_bytes_with_the_reader(
        data: bytes, profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> None:
    outcomes = []
    for reader in (True, False):
        folder = Path(tmp_path_factory.mktemp("items" if reader else "pydicom"))
        pipeline = Pipeline(profile, KEY, out=folder / "out", quarantine=folder / "q",
                            durable=False)
        with mock.patch("deid.engine.review.converted_sequence",
                        converted_sequence if reader else lambda ds, key: None):
            outcomes.append(pipeline.deidentify_bytes(data))
    with_reader, without = outcomes
    event("released" if isinstance(with_reader, Written) else "quarantined")
    assert type(with_reader) is type(without)
    assert with_reader == without
    if isinstance(with_reader, Written):
        assert with_reader.data == without.data
        for field in ("counts", "adjusted", "applied", "text_replaced"):
            assert list(getattr(with_reader.released, field).items()) == \
                list(getattr(without.released, field).items())
