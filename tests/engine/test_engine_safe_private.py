"""Retain Safe Private in the engine: kept by creator + group + element byte, over either base."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import release

from deid.profile.loader import load_profile
from deid.synthetic.ct import ct_slice
from deid.synthetic.private import SAFE_CREATOR, safe_and_unlisted_blocks
from deid.synthetic.uids import derive_uid


def _profile(folder: Path, base: str):
    path = folder / "keep-safe.yaml"
    path.write_text(f"name: keep-safe\nextends: {base}\noptions: [retain_safe_private]\n")
    return load_profile(path)


def _slice(patient):
    ds = ct_slice(patient, series_uid=derive_uid("safe", patient.patient_id), index=0, size=16,
                  private_elements=0)
    safe_and_unlisted_blocks(ds, patient, safe_block=0x10, other_block=0x11)
    return ds


@pytest.mark.parametrize("base", ["vghtpe", "ps3.15-basic"])
def test_the_listed_elements_are_kept_over_either_base(tmp_path: Path, key, patient, base) -> None:
    released, _ = release(_slice(patient), _profile(tmp_path, base), key)
    kept = sorted(f"{int(tag):08X}" for tag in released.keys() if tag.is_private)
    assert kept == ["00190010", "00191023", "00191024", "00191027"]
    assert released[0x00190010].value == SAFE_CREATOR


def test_an_element_with_another_vr_is_not_the_listed_one(tmp_path: Path, key, patient) -> None:
    ds = _slice(patient)
    ds.add_new(0x00191023, "LO", "39.375")  # Table Speed is DS in the table
    released, _ = release(ds, _profile(tmp_path, "vghtpe"), key)
    assert sorted(f"{int(tag):08X}" for tag in released.keys() if tag.is_private) == [
        "00190010", "00191024", "00191027"]


def test_a_creator_whose_block_keeps_nothing_goes(tmp_path: Path, key, patient) -> None:
    ds = _slice(patient)
    for tag in (0x00191023, 0x00191024, 0x00191027):
        del ds[tag]
    released, _ = release(ds, _profile(tmp_path, "vghtpe"), key)
    assert [tag for tag in released.keys() if tag.is_private] == []


def test_a_block_inside_a_sequence_item_is_judged_by_that_item_s_creators(
    tmp_path: Path, key, patient
) -> None:
    ds = ct_slice(patient, series_uid=derive_uid("safe", patient.patient_id), index=0, size=16,
                  private_elements=0)
    (item,) = ds.ReferencedImageSequence
    safe_and_unlisted_blocks(item, patient, safe_block=0x11, other_block=0x10)
    released, _ = release(ds, _profile(tmp_path, "vghtpe"), key)
    (kept_item,) = released.ReferencedImageSequence
    assert sorted(f"{int(tag):08X}" for tag in kept_item.keys() if tag.is_private) == [
        "00190011", "00191123", "00191124", "00191127"]
    assert kept_item[0x00190011].value == SAFE_CREATOR


def test_an_implicit_vr_object_keeps_its_safe_elements(tmp_path: Path, key, patient) -> None:
    from pydicom.uid import ImplicitVRLittleEndian

    ds = ct_slice(patient, series_uid=derive_uid("safe", patient.patient_id), index=0, size=16,
                  private_elements=0, transfer_syntax=ImplicitVRLittleEndian)
    safe_and_unlisted_blocks(ds, patient, safe_block=0x10, other_block=0x11)
    released, data = release(ds, _profile(tmp_path, "vghtpe"), key)
    assert sorted(f"{int(tag):08X}" for tag in released.keys() if tag.is_private) == [
        "00190010", "00191023", "00191024", "00191027"]
    assert str(released.private_block(0x0019, SAFE_CREATOR)[0x23].value).strip() == "39.375"
    assert patient.name.encode() not in data
