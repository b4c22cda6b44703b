"""Dropping the removed private elements before the walk (deid.engine.deidentifier.
drop_removed_private) counts them where the walk would have: the object's counts of actions (an
audit line writes them in their order) come out the same, wherever the first dropped element was.
"""

from __future__ import annotations

import io

import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from deid.engine.compiler import compile_rules
from deid.engine.deidentifier import _applied, drop_removed_private
from deid.engine.identity import Identity
from deid.engine.uids import UidRemapper
from deid.engine.walker import Walker
from deid.io.reader import read_object
from deid.keys import SecretKey
from deid.profile.loader import load_profile

KEY = SecretKey(bytes(range(32)))
CT = "1.2.840.10008.5.1.4.1.1.2"


def _object(private_first: bool) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.9.1"
    block = ds.private_block(0x0009 if private_first else 0x0011, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "scanner note")
    block.add_new(0x02, "US", 7)
    ds.PatientID = "A123456789"
    ds.PatientName = "CHEN^MEI-LING"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _walked(data: bytes, drop: bool) -> tuple[list, dict, list[int]]:
    profile = load_profile("vghtpe")
    ds = read_object(data)
    rules = compile_rules(profile, CT)
    dropped, at = drop_removed_private(ds, rules) if drop else ([], -1)
    walker = Walker(rules, Identity(KEY, lookup=None, case_digits=profile.case_number_digits),
                    UidRemapper(KEY, profile.uid_root), "A123456789")
    walker.dropped(dropped, at)
    walker.walk(ds)
    # the actions applied as the audit line has them (the dropped ones are not listed one by one)
    applied = _applied(walker.applied, walker.removed_unread)
    return list(walker.counts.items()), applied, list(ds._dict)


@pytest.mark.parametrize("private_first", [True, False], ids=["private-between", "private-last"])
def test_dropped_elements_are_counted_in_the_walks_order(private_first: bool) -> None:
    data = _object(private_first)
    counts, applied, left = _walked(data, drop=True)
    full_counts, full_applied, full_left = _walked(data, drop=False)
    assert counts == full_counts  # the same actions, counted in the same order
    assert applied == full_applied
    assert left == full_left
    assert ("remove", 3) in counts  # the creator and both elements
    _, _, unwalked = _walked(data, drop=False)
    assert len(unwalked) == len(left)


def test_dropping_finds_the_private_elements_nothing_reads() -> None:
    ds = read_object(_object(True))
    dropped, at = drop_removed_private(ds, compile_rules(load_profile("vghtpe"), CT))
    assert dropped == [0x00090010, 0x00091001, 0x00091002]
    assert at == 2  # after SOP Class and SOP Instance UID
    assert not any(tag >> 16 == 0x0009 for tag in ds._dict)
