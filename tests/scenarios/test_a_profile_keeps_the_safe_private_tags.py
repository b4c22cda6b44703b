"""A research group asks for the scanner's safe private tags (PS3.15 E.3.10, Retain Safe Private):
their profile extends vghtpe with the option and one vendor element of its own.  Only the listed
elements survive, under their own Private Creator, wherever the scanner put the block; the method
code sequence says 113111; `deid explain` lists what is kept; `deid verify` accepts the release."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from support import deid, phi_found, run_args

from deid.synthetic.ct import ct_slice
from deid.synthetic.files import write_dataset
from deid.synthetic.private import SAFE_CREATOR, UNLISTED_CREATOR, safe_and_unlisted_blocks
from deid.synthetic.uids import derive_uid

PROFILE = """\
name: safe-private-study
version: 1
extends: vghtpe
options: [retain_safe_private]
safe_private:
  - creator: {creator}
    tag: (0019,xx25)
"""


def _source(folder: Path, patient, safe_block: int, other_block: int) -> Path:
    ds = ct_slice(patient, series_uid=derive_uid("safe-private", patient.patient_id), index=0,
                  size=16, private_elements=0)
    safe_and_unlisted_blocks(ds, patient, safe_block=safe_block, other_block=other_block)
    return write_dataset(ds, folder / "slice.dcm")


def _private(ds: pydicom.Dataset) -> dict[tuple[str, int], object]:
    """Released private elements as (creator, element byte) -> value; creators by their blocks."""
    creators = {tag.element: ds[tag].value for tag in ds.keys() if tag.is_private_creator}
    return {(creators[tag.element >> 8], tag.element & 0xFF): ds[tag].value
            for tag in ds.keys() if tag.is_private and not tag.is_private_creator}


@pytest.mark.parametrize(("safe_block", "other_block"), [(0x10, 0x11), (0x11, 0x10), (0x12, 0x10)])
def test_only_the_listed_private_elements_survive_under_their_creator(
    tmp_path: Path, key_file: Path, patient, safe_block: int, other_block: int
) -> None:
    source = _source(tmp_path / "in", patient, safe_block, other_block)
    profile = tmp_path / "safe-private-study.yaml"
    profile.write_text(PROFILE.format(creator=UNLISTED_CREATOR))
    out = tmp_path / "out"
    result = deid(*run_args(source, out, key_file, "--profile", profile))
    assert result.returncode == 0, result.stderr
    (released,) = sorted(out.rglob("*.dcm"))
    ds = pydicom.dcmread(released)
    assert _private(ds) == {
        (SAFE_CREATOR, 0x23): "39.375", (SAFE_CREATOR, 0x24): "4.2", (SAFE_CREATOR, 0x27): "0.5",
        (UNLISTED_CREATOR, 0x25): "1.5",  # the profile's own safe_private
    }
    assert phi_found(released.read_bytes(), patient) == []
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert "113111" in codes and codes[0] == "113100"
    check = deid("verify", out, "--profile", profile)
    assert "private-tag" not in check.stdout + check.stderr, check.stdout


def test_without_the_option_no_private_element_survives(
    tmp_path: Path, key_file: Path, patient
) -> None:
    source = _source(tmp_path / "in", patient, 0x10, 0x11)
    out = tmp_path / "out"
    result = deid(*run_args(source, out, key_file, "--profile", "vghtpe"))
    assert result.returncode == 0, result.stderr
    (released,) = sorted(out.rglob("*.dcm"))
    ds = pydicom.dcmread(released)
    assert [tag for tag in ds.keys() if tag.is_private] == []
    assert "113111" not in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]


def test_explain_lists_what_is_kept(tmp_path: Path) -> None:
    profile = tmp_path / "safe-private-study.yaml"
    profile.write_text(PROFILE.format(creator=UNLISTED_CREATOR))
    result = deid("explain", "--profile", profile, "--sop-class", "CTImageStorage")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Retain Safe Private" in text and "E.3.10-1" in text and "2026d" in text
    assert "(0019,xx23) GEMS_ACQU_01" in text  # a table row
    assert f"(0019,xx25) {UNLISTED_CREATOR}" in text  # the profile's own


def test_a_safe_private_list_without_the_option_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "no-option.yaml"
    profile.write_text(PROFILE.format(creator="X").replace("options: [retain_safe_private]\n", ""))
    result = deid("explain", "--profile", profile, "--sop-class", "CTImageStorage")
    assert result.returncode == 2 and "retain_safe_private" in result.stderr
    profile.write_text(PROFILE.format(creator="X").replace("(0019,xx25)", "(0019,1025)"))
    result = deid("explain", "--profile", profile, "--sop-class", "CTImageStorage")
    assert result.returncode == 2 and "safe_private[0].tag" in result.stderr
