"""Property test: the scan of a file's top-level data set (deid.io.scan) reads exactly what
pydicom reads, and ``deid run``'s pipeline releases the same bytes with it as without it.

Hypothesis varies synthetic objects (CT slices, a PET slice, an RT Structure Set, a SEG, a TID 1500
SR, from several patients) the ways files vary: sequences of defined or undefined length, a
character set, extra top-level elements of any VR (empty, odd, long values; private ones among
them), the transfer syntax, and a file cut short at any byte.  For each file the scan either
declines (pydicom reads it, as before) or gives pydicom's dataset: the same elements in the same
order (tag, VR, length, value, offset), file meta, preamble and encodings.  And the pipeline's
outcome, with the scan and with pydicom's read, is the same: the same released bytes, or the same
quarantine reason.  The engine's other fast step, dropping the top-level private elements the
rules remove and nothing reads (in the scan itself, or after pydicom's read:
deid.engine.deidentifier.drop_removed_private), is checked over the same inputs: the same bytes and the same facts, their counts and applied
actions in the same order (an audit line writes them in that order).
"""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom import dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from deid.io.reader import read_object
from deid.io.scan import scan_file
from deid.keys import SecretKey
from deid.outcome import Written
from deid.pipeline import Pipeline
from deid.profile.loader import load_profile
from deid.profile.model import Profile
from deid.synthetic import ct_slice, landmark_sr, make_patient, pet_slice, rtss, segmentation

# pydicom warns of the odd values made here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
EXAMPLES = settings(max_examples=120, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
KEY = SecretKey(bytes(range(32)))
KINDS = ("ct", "ct-private", "pet", "rtss", "seg", "sr")
EXTRA_VRS = ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "OB", "OW", "PN", "SH", "ST",
             "TM", "UC", "UI", "UN", "UR", "UT")  # the synthetic objects hold the binary numbers


def _base(kind: str, patient: int) -> Dataset:
    p = make_patient(patient)
    if kind in ("ct", "ct-private"):
        return ct_slice(p, series_uid=p.series_uid("P"), index=patient, size=16,
                        private_elements=40 if kind == "ct-private" else 0)
    if kind == "pet":
        return pet_slice(p, index=patient, size=16)
    images = [ct_slice(p, series_uid=p.series_uid("P"), index=i, size=16, private_elements=0)
              for i in range(2)]
    if kind == "rtss":
        return rtss(p, images)
    if kind == "seg":
        return segmentation(p, images)
    return landmark_sr(p, images)


@st.composite
def files(draw: st.DrawFn) -> bytes:
    """A synthetic object varied as files vary, as Part 10 bytes (maybe cut short)."""
    ds = _base(draw(st.sampled_from(KINDS)), draw(st.integers(1, 3)))
    undefined = draw(st.booleans())
    for elem in ds.iterall():
        if elem.VR == "SQ":
            elem.is_undefined_length = undefined if draw(st.booleans()) else not undefined
    charset = draw(st.sampled_from((None, "ISO_IR 100", "ISO_IR 192", "")))
    if charset is not None:
        ds.SpecificCharacterSet = charset
    for _ in range(draw(st.integers(0, 4))):
        vr = draw(st.sampled_from(EXTRA_VRS))
        group = draw(st.sampled_from((0x0009, 0x0011, 0x0019, 0x0029, 0x4001)))
        tag = group << 16 | draw(st.integers(0x1000, 0x10FF))
        size = draw(st.sampled_from((0, 1, 2, 7, 64, 70000)))
        value = draw(st.binary(min_size=size, max_size=size)) if size < 1000 else bytes(size)
        if vr not in ("OB", "OW", "UN", "UT", "UC", "UR") and len(value) > 0xFFFF:
            value = value[:64]
        if vr in ("AS", "DA", "DS", "DT", "IS", "TM"):
            value = bytes(b % 10 + 48 for b in value)
        elif vr in ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UR", "UT"):
            value = bytes(b % 26 + 65 for b in value)
        if vr == "OW" and len(value) % 2:
            value = value[:-1]
        ds.add(DataElement(tag, vr, value))
    if draw(st.booleans()):  # a creator for group 0009's elements
        ds.add(DataElement(0x00090010, "LO", "ACME 1.0"))
    syntax = draw(st.sampled_from((ExplicitVRLittleEndian,) * 4 + (ImplicitVRLittleEndian,
                                                                    ExplicitVRBigEndian)))
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    data = buffer.getvalue()
    if draw(st.integers(0, 4)) == 0:  # cut short: at an element boundary or anywhere
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _same_reading(scanned: pydicom.FileDataset, read: pydicom.FileDataset) -> None:
    assert list(scanned._dict.items()) == list(read._dict.items())
    assert [type(e) for e in scanned._dict.values()] == [type(e) for e in read._dict.values()]
    assert list(scanned.file_meta._dict.items()) == list(read.file_meta._dict.items())
    assert scanned.preamble == read.preamble
    assert scanned.original_encoding == read.original_encoding
    assert scanned.original_character_set == read.original_character_set
    assert scanned._character_set == read._character_set
    assert (scanned.is_implicit_VR, scanned.is_little_endian) == (read.is_implicit_VR,
                                                                  read.is_little_endian)
    # every other attribute of both, as pydicom's __init__ leaves them (the scan makes its data
    # sets by copying those of a fresh one)
    assert _attributes(scanned) == _attributes(read)
    assert _attributes(scanned.file_meta) == _attributes(read.file_meta)


def _attributes(ds: Dataset) -> dict[str, object]:
    """A data set's instance attributes but its elements, file meta, buffer and what the scan
    left out (their own comparisons above); the buffer's type."""
    attributes = {name: value for name, value in ds.__dict__.items()
                  if name not in ("_dict", "file_meta", "buffer", "_deid_dropped_private")}
    return attributes | {"buffer": type(ds.__dict__.get("buffer"))}


@EXAMPLES
@given(data=files())
def test_the_scan_reads_what_pydicom_reads(data: bytes) -> None:
    scanned = scan_file(data)
    event("declined" if scanned is None else "scanned")
    if scanned is None:
        return  # declined: pydicom reads it, as before
    _same_reading(scanned, pydicom.dcmread(io.BytesIO(data)))


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("vghtpe")


@EXAMPLES
@given(data=files())
def test_the_pipeline_releases_the_same_bytes_with_the_scan(
        data: bytes, profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> None:
    outcomes = []
    for scan in (True, False):
        folder = Path(tmp_path_factory.mktemp("scan" if scan else "pydicom"))
        pipeline = Pipeline(profile, KEY, out=folder / "out", quarantine=folder / "q",
                            durable=False)
        read = partial(read_object, scan=scan)
        with mock.patch("deid.pipeline.read_object", read), \
                mock.patch("deid.checks.release.read_object", read):
            outcomes.append(pipeline.deidentify_bytes(data))
    with_scan, without = outcomes
    assert type(with_scan) is type(without)
    assert with_scan == without  # the released bytes and facts, or the same quarantine reason
    if isinstance(with_scan, Written):
        assert with_scan.data == without.data


def test_the_benchmark_slice_is_scanned_not_declined() -> None:
    """The common case takes the scan (else the property above says nothing about it)."""
    p = make_patient(1)
    ds = ct_slice(p, series_uid="1.2.826.0.1.3680043.10.3.1", index=0, size=64)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    scanned = scan_file(buffer.getvalue())
    assert scanned is not None
    assert any(isinstance(e.value, Sequence) or e.VR == "SQ" for e in scanned._dict.values())
    _same_reading(scanned, pydicom.dcmread(io.BytesIO(buffer.getvalue())))


def test_pydicoms_own_test_files_scan_as_pydicom_reads_them() -> None:
    """Real files of many makers (pydicom's test files): each scanned one reads as pydicom reads it."""
    import pydicom.data

    scanned = 0
    for path in sorted((Path(pydicom.data.__file__).parent / "test_files").rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        found = scan_file(data)
        if found is None:
            continue
        scanned += 1
        _same_reading(found, pydicom.dcmread(io.BytesIO(data)))
    assert scanned >= 20  # the scan is taken for the plain Explicit VR Little Endian ones


@EXAMPLES
@given(data=files())
def test_dropping_removed_private_elements_changes_no_byte_nor_fact(
        data: bytes, profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> None:
    from deid.engine import deidentifier

    seen: list[str] = []
    by_scan, after_read = deidentifier.dropped_by_scan, deidentifier.drop_removed_private

    def scan_spy(ds: Dataset):  # noqa: ANN202
        found = by_scan(ds)
        seen.extend(["scan"] if found else [])
        return found

    def read_spy(ds: Dataset, rules: object) -> tuple[list[int], int]:
        found = after_read(ds, rules)
        seen.extend(["read"] if found[0] else [])
        return found

    outcomes = []
    for drop in (True, False):  # with the drops (in the scan, else after the read), without
        folder = Path(tmp_path_factory.mktemp("drop"))
        pipeline = Pipeline(profile, KEY, out=folder / "out", quarantine=folder / "q",
                            durable=False)
        with mock.patch.object(deidentifier, "dropped_by_scan", scan_spy if drop else lambda ds: None), \
                mock.patch.object(deidentifier, "drop_removed_private",
                                  read_spy if drop else lambda ds, rules: ([], -1)), \
                mock.patch.object(deidentifier.Deidentifier, "private_drop",
                                  deidentifier.Deidentifier.private_drop if drop
                                  else lambda self, sop_class, lists: None):
            outcomes.append(pipeline.deidentify_bytes(data))
    event("dropped by the scan" if "scan" in seen else "dropped after the read" if seen
          else "none dropped")
    fast, full = outcomes
    assert fast == full
    if isinstance(fast, Written):
        assert fast.data == full.data
        for field in ("counts", "adjusted", "applied", "text_replaced"):
            assert list(getattr(fast.released, field).items()) == \
                list(getattr(full.released, field).items())


def test_pixel_data_is_a_view_until_something_but_the_encoder_needs_bytes() -> None:
    from deid.io.scan import PIXEL_VIEW_MIN, own_pixel_bytes

    p = make_patient(2)
    buffer = io.BytesIO()
    dcmwrite(buffer, ct_slice(p, series_uid="1.2.826.0.1.3680043.10.3.2", index=0, size=256),
             enforce_file_format=True)
    data = buffer.getvalue()
    scanned = scan_file(data)
    assert scanned is not None
    raw = scanned._dict[0x7FE00010]
    assert len(raw.value) >= PIXEL_VIEW_MIN and isinstance(raw.value, memoryview)
    assert raw.value == pydicom.dcmread(io.BytesIO(data)).PixelData  # equal to pydicom's bytes
    own_pixel_bytes(scanned)
    assert type(scanned._dict[0x7FE00010].value) is bytes
    converted = scan_file(data)
    converted.PixelData  # noqa: B018 (pydicom converts the element in place)
    own_pixel_bytes(converted)
    assert type(converted.PixelData) is bytes


@pytest.mark.parametrize("tail", [
    b"\xfe\xff\x0d\xe0OB\x00\x00\x00\x00\x00\x00",  # an item delimiter (with a VR) at the top level
    b"\xfe\xff\x0d\xe0SQ\x00\x00\xff\xff\xff\xff",  # the same, of undefined length
    b"\x11\x00\x01\x10OB\x00\x00\xff\xff\xff\xff",  # an undefined length that is not a sequence's
    b"\x11\x00\x01\x10OB\x00\x00\x10\x00\x00\x00\x00\x00",  # a value that runs past the end
    b"\x11\x00\x01\x10XX\x02\x00AB",  # a VR pydicom does not know
])
def test_what_the_scan_does_not_read_as_pydicom_does_is_left_to_pydicom(tail: bytes) -> None:
    p = make_patient(3)
    ds = ct_slice(p, series_uid="1.2.826.0.1.3680043.10.3.3", index=0, size=16, private_elements=0)
    del ds.PixelData  # (the tail follows the last element)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    assert scan_file(buffer.getvalue()) is not None
    assert scan_file(buffer.getvalue() + tail) is None
