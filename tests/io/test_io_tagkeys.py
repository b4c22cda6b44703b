"""The scan keys a data set's elements with the process's one BaseTag per tag (deid.io.tagkeys),
so that deid's look-ups find them by identity; values, hashes and order stay BaseTag's."""

from __future__ import annotations

import io

from pydicom import dcmwrite
from pydicom.tag import BaseTag

from deid.io import tagkeys
from deid.io.scan import scan_file
from deid.io.tagkeys import KEYS, tag_key
from deid.synthetic import ct_slice, make_patient


def test_a_tag_has_one_key_object_equal_to_its_basetag() -> None:
    key = tag_key(0x00100010)
    assert key is tag_key(0x00100010) is tag_key(BaseTag(0x00100010))
    assert type(key) is BaseTag and key == 0x00100010 and hash(key) == hash(0x00100010)
    assert KEYS[0x00100010] is key


def test_the_table_stops_growing_at_its_limit(monkeypatch) -> None:
    monkeypatch.setattr(tagkeys, "MOST", len(KEYS))
    tag = 0x7FFF0011
    assert tag not in KEYS
    key = tag_key(tag)
    assert key == tag and type(key) is BaseTag and tag not in KEYS  # a fresh one, not kept


def test_the_scanned_elements_are_keyed_by_the_kept_objects() -> None:
    p = make_patient(1)
    ds = ct_slice(p, series_uid=p.series_uid("P"), index=0, size=16, private_elements=20)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    scanned = scan_file(buffer.getvalue())
    assert scanned is not None
    for tag, elem in scanned._dict.items():
        assert tag is KEYS[int(tag)] and elem.tag is tag
    for tag in scanned.file_meta._dict:
        assert tag is KEYS[int(tag)]
