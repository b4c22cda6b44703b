"""The walker computes a changed value once per series (deid.engine.walker.NewValues): the objects
of a series, de-identified one after the other, are released as each would be on its own, the
same bytes read in another character set are another value, and a value that cannot be changed
fails every time."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset

from deid.engine.deidentifier import Deidentifier
from deid.errors import ObjectError
from deid.io.encoder import encode
from deid.io.reader import read_object
from deid.keys import SecretKey
from deid.profile.loader import load_profile
from deid.synthetic import ct_slice, make_patient

KEY = SecretKey(bytes(range(32)))


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _series(count: int) -> list[Dataset]:
    patient = make_patient(3)
    series = patient.series_uid("P")
    return [ct_slice(patient, series_uid=series, index=i, size=16, private_elements=20)
            for i in range(count)]


def _released(engine: Deidentifier, data: bytes) -> bytes:
    return encode(engine.deidentify(read_object(data)).dataset)


def test_a_series_is_released_as_each_of_its_objects_alone() -> None:
    profile = load_profile("vghtpe")
    objects = [_bytes(ds) for ds in _series(3)]
    one = Deidentifier(profile, KEY)  # its values computed for the first slice serve the others
    together = [_released(one, data) for data in objects]
    alone = [_released(Deidentifier(profile, KEY), data) for data in objects]
    assert together == alone
    assert len(set(together)) == 3  # (each slice its own SOP Instance UID)


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
    together = [one.deidentify(read_object(data)).pseudonyms["accession_number"] for data in objects]
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
