"""The walker learns once per series what it does (deid.engine.walker.WalkMemory: the plan of a
data set's layout, the new bytes of a changed value): the objects of a series, de-identified one
after the other, are released and recorded as each would be on its own; the same bytes read in
another character set are another value; a value that cannot be changed fails every time; the
same layout with other private creators keeps what those creators' blocks keep."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from deid.engine import deidentifier
from deid.engine.compiler import CompiledRules
from deid.engine.deidentifier import Deidentifier, Result
from deid.errors import PATH_ATTRIBUTE, ObjectError
from deid.io.encoder import encode
from deid.io.reader import read_object
from deid.keys import SecretKey
from deid.profile.loader import load_profile
from deid.synthetic import ct_slice, make_patient
from deid.synthetic.private import SAFE_CREATOR, safe_and_unlisted_blocks

KEY = SecretKey(bytes(range(32)))


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _series(count: int, syntax: str = ExplicitVRLittleEndian) -> list[Dataset]:
    patient = make_patient(3)
    series = patient.series_uid("P")
    return [ct_slice(patient, series_uid=series, index=i, size=16, private_elements=20,
                     transfer_syntax=syntax) for i in range(count)]


def _released(engine: Deidentifier, data: bytes) -> bytes:
    return encode(engine.deidentify(read_object(data)).dataset)


def _recorded(result: Result) -> tuple:
    """What the audit record of an object holds, in its order."""
    return (list(result.counts.items()), list(result.adjusted.items()),
            list(result.applied.items()), result.kept_text, result.flagged_text,
            result.text_replaced, result.references, encode(result.dataset))


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_a_series_is_released_and_recorded_as_each_of_its_objects_alone(syntax: str) -> None:
    profile = load_profile("vghtpe")
    objects = [_bytes(ds) for ds in _series(3, syntax)]
    one = Deidentifier(profile, KEY)  # what it learns from the first slice serves the others
    together = [_recorded(one.deidentify(read_object(data))) for data in objects]
    alone = [_recorded(Deidentifier(profile, KEY).deidentify(read_object(data)))
             for data in objects]
    assert together == alone
    assert len({recorded[-1] for recorded in together}) == 3  # (each its own SOP Instance UID)
    assert {"keep", "remove"} <= {action for action, _ in together[0][0]}


def test_the_same_bytes_in_another_character_set_are_another_value() -> None:
    profile = load_profile("vghtpe")
    latin, utf8 = _series(2)
    latin.SpecificCharacterSet = "ISO_IR 100"
    latin.AccessionNumber = "Ã©A12345"  # b"\xc3\xa9A12345" in Latin-1 ...
    utf8.SpecificCharacterSet = "ISO_IR 192"
    utf8.AccessionNumber = "éA12345"  # ... and in UTF-8
    objects = [_bytes(latin), _bytes(utf8)]
    assert objects[0].count(b"\xc3\xa9A12345") == objects[1].count(b"\xc3\xa9A12345") == 1
    one = Deidentifier(profile, KEY)
    together = [one.deidentify(read_object(data)).pseudonyms["accession_number"]
                for data in objects]
    alone = [Deidentifier(profile, KEY).deidentify(read_object(data)).pseudonyms["accession_number"]
             for data in objects]
    assert together == alone
    assert together[0] != together[1]


def test_a_value_that_cannot_be_changed_fails_every_time() -> None:
    profile = load_profile("vghtpe")
    good, bad = _series(2)
    bad.StudyDate = "2017-4-15"  # not a DA value: the date cannot be generalised
    one = Deidentifier(profile, KEY)
    _released(one, _bytes(good))
    for _ in range(2):
        with pytest.raises(ObjectError) as raised:
            _released(one, _bytes(bad))
        assert raised.value.code == "rule-not-applicable"
        assert raised.value.path == "(0008,0020)"


def test_the_same_name_of_two_patients_takes_each_ones_case_number() -> None:
    profile = load_profile("vghtpe")
    first, second = _series(2)
    second.PatientID = first.PatientID + "9"
    second.PatientName = first.PatientName
    objects = [_bytes(first), _bytes(second)]
    one = Deidentifier(profile, KEY)
    together = [one.deidentify(read_object(data)).pseudonyms["patient_name"] for data in objects]
    alone = [Deidentifier(profile, KEY).deidentify(read_object(data)).pseudonyms["patient_name"]
             for data in objects]
    assert together == alone
    assert together[0] != together[1]


def test_the_same_layout_with_another_creator_keeps_what_that_creator_keeps(tmp_path) -> None:
    path = tmp_path / "keep-safe.yaml"
    path.write_text("name: keep-safe\nextends: vghtpe\noptions: [retain_safe_private]\n")
    profile = load_profile(path)
    patient = make_patient(3)
    safe, other = _series(2)
    for ds in (safe, other):
        del ds.ReferencedImageSequence  # (the same layout but the creator's value)
        safe_and_unlisted_blocks(ds, patient, safe_block=0x10, other_block=0x11)
    other[0x00190010].value = "NOT " + SAFE_CREATOR[:60]  # the same tags and VRs, another creator
    objects = [_bytes(safe), _bytes(other)]
    one = Deidentifier(profile, KEY)
    together = [_recorded(one.deidentify(read_object(data))) for data in objects]
    alone = [_recorded(Deidentifier(profile, KEY).deidentify(read_object(data)))
             for data in objects]
    assert together == alone
    kept = [read_object(recorded[-1]).get(0x00191023) is not None for recorded in together]
    assert kept == [True, False]


@pytest.mark.parametrize("order", [(9, 0x17), (0x17, 9)], ids=["group-9-first", "group-17-first"])
def test_the_same_layout_with_private_elements_dropped_elsewhere_counts_them_there(order) -> None:
    profile = load_profile("vghtpe")
    objects = []
    for group in order:  # the same elements left after the drop; the private ones before or after
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.9.1"
        ds.private_block(group, "ACME 1.0", create=True).add_new(0x01, "LO", "scanner note")
        ds.PatientID = "A123456789"
        ds.PatientName = "CHEN^MEI-LING"
        ds.SliceThickness = "1.0"  # (group 0018: only counted, right after a block of group 0017)
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.9.2"  # (group 0020)
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.9.3"
        ds.StudyID = "S1234"  # (emptied: the first "empty", after either block)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        objects.append(_bytes(ds))
    one = Deidentifier(profile, KEY)
    together = [one.deidentify(read_object(data, private_drop=one.private_drop))
                for data in objects]
    alone = []
    for data in objects:
        engine = Deidentifier(profile, KEY)
        alone.append(engine.deidentify(read_object(data, private_drop=engine.private_drop)))
    assert [_recorded(r) for r in together] == [_recorded(r) for r in alone]
    first, second = ([action for action in r.counts] for r in together)
    assert first != second  # "remove" counted where the dropped elements were


class _FailingRules(CompiledRules):
    """Rules whose decision for Slice Thickness raises (a bug), decided anew (not cached)."""

    def _decide(self, path, tag, vr):  # type: ignore[no-untyped-def]
        if tag == 0x00180050:
            raise RuntimeError("a bug deciding (0018,0050)")
        return super()._decide(path, tag, vr)


@pytest.mark.parametrize("bad_date", [True, False], ids=["a-bad-value-before", "the-bug-alone"])
def test_an_element_whose_decision_fails_fails_where_the_walk_meets_it(monkeypatch,
                                                                       bad_date: bool) -> None:
    profile = load_profile("vghtpe")
    (ds,) = _series(1)
    if bad_date:
        ds.StudyDate = "2017-4-15"  # (0008,0020), before (0018,0050): its error comes first
    data = _bytes(ds)
    monkeypatch.setattr(deidentifier, "compile_rules",
                        lambda profile, sop_class, **options: _FailingRules(profile, sop_class,
                                                                            **options))
    engine = Deidentifier(profile, KEY)
    for _ in range(2):  # (a plan that failed is not remembered)
        if bad_date:
            with pytest.raises(ObjectError) as raised:
                engine.deidentify(read_object(data))
            assert (raised.value.code, raised.value.path) == ("rule-not-applicable", "(0008,0020)")
        else:
            with pytest.raises(RuntimeError) as bug:
                engine.deidentify(read_object(data))
            assert getattr(bug.value, PATH_ATTRIBUTE) == "(0018,0050)"
