"""A user's input holds corrupt or hostile files: a VR DICOM does not define, sequences nested
hundreds of levels deep (made to exhaust a reader's stack), element headers damaged as
tools/fuzz_pipeline.py damages them (a text value under a number VR, a sequence no delimiter ends,
a name where the SOP Class UID goes).  Each goes to the quarantine with a reason a person can act
on, never ``internal-error``; the rest is released, nesting within the limit included, and so are
files whose damaged tags moved the patient's name and ID under tags no attribute has: without
them."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from support import SIZE, SLICES, deid, phi_found, run_args, tree

from deid.audit.reasons import REASONS
from deid.io.reader import MAX_NESTING
from deid.synthetic import make_patient, oddities, write_sample_study

#: file name -> (code, stage, path) of its quarantine reason
REFUSED = {
    "unknown_vr.dcm": ("unreadable", "read", "(0008,0060)"),
    "deeply_nested.dcm": ("too-deeply-nested", "read", "(0040,A730)"),
    "deeply_nested_undefined.dcm": ("too-deeply-nested", "read", ""),
    # Accession Number read as SL (14 bytes: no whole number of 4-byte values) by the identity
    # review, before any rule
    "damaged_vr_00080050_sl.dcm": ("unreadable", "read", "(0008,0050)"),
    "sequence_without_delimiter.dcm": ("unreadable", "read", "(0008,1140)"),
    "damaged_tag_00100010_00080016.dcm": ("missing-identifier", "read", "(0008,0016)"),
    # an accession number of digits alone under the SOP Class UID's tag, in Implicit VR (the last
    # of the two is read, as UI): it reads as a UID but names no class; it went out as the kept
    # class (found by the fuzzer)
    "damaged_tag_00080050_00080016_implicit.dcm": ("missing-identifier", "read", "(0008,0016)"),
    # Manufacturer's length runs over Institution Name and Referring Physician's Name
    "swallowing_length_00080070.dcm": ("unreadable", "encode", "(0008,0070)"),
    # Frame of Reference UID (Type 1) read as US numbers: not released as the UID
    "damaged_vr_00200052_us.dcm": ("iod-check-failed", "check", "(0020,0052)"),
    # an SR content item's UID read as AT tags (it was internal-error), named where it is in the
    # released report: two content items before it are removed
    "damaged_content_item_vr_0040a124_at.dcm": (
        "iod-check-failed", "check", "(0040,A730)[15].(0040,A730)[0].(0040,A730)[1].(0040,A124)"),
    # a UID read as UN runs past its sequence's end: the Referenced SOP Class UID (kept) went out
    # holding the other items' original SOP Instance UIDs; the Instance UID (remapped) lost them
    "item_element_past_its_end_00081150.dcm": ("unreadable", "read", "(0008,2112)[0].(0008,1150)"),
    "item_element_past_its_end_00081155.dcm": ("unreadable", "read", "(0008,2112)[0].(0008,1155)"),
    # Study Description (LO) read as DS, holding the patient's name: the cleaned text (it was
    # internal-error: "[removed]" put under DS) cannot be written under the damaged VR
    "damaged_vr_00081030_ds.dcm": ("unreadable", "rules", "(0008,1030)"),
}
#: the damaged VR an iod-check-failed reason names
DAMAGED_VR = {"damaged_vr_00200052_us.dcm": "US", "damaged_content_item_vr_0040a124_at.dcm": "AT"}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    incoming = root / "incoming"
    patient = make_patient(7)
    good = write_sample_study(incoming, patient, slices=SLICES, size=SIZE)
    hostile, limit = incoming / "hostile", incoming / "limit"
    refused = [oddities.unknown_vr(hostile, patient),
               oddities.deeply_nested(hostile, patient, depth=600),
               oddities.deeply_nested(hostile, patient, depth=600, undefined=True),
               oddities.damaged_vr(hostile, 0x00080050, "SL", patient),
               oddities.sequence_without_delimiter(hostile, patient),
               oddities.damaged_tag(hostile, 0x00100010, 0x00080016, patient),
               oddities.damaged_tag(hostile, 0x00080050, 0x00080016,
                                    make_patient(7, accession_number="710000"), implicit=True),
               oddities.swallowing_length(hostile, patient=patient),
               oddities.damaged_vr(hostile, 0x00200052, "US", patient),
               oddities.damaged_content_item_vr(hostile, patient),
               oddities.item_element_past_its_end(hostile, 0x00081150, patient),
               oddities.item_element_past_its_end(hostile, 0x00081155, patient),
               oddities.damaged_vr(hostile, 0x00081030, "DS", patient,
                                   value=f"Liver CT of {patient.name.split('^')[0].title()}")]
    # released without what the damaged headers now hold: under a tag no attribute has, or under
    # a VR of another kind than its attribute's (Software Versions as SL), nothing says it is safe
    moved = [oddities.damaged_tag(incoming / "moved", 0x00100010, 0x00100110, patient),
             oddities.damaged_tag(incoming / "moved", 0x00100020, 0xFFFEE0DD, patient),
             # under (60CE,0022): pydicom's dictionary reads any 60xx group's (xx,0022) as an
             # Overlay Description (LO, in Implicit VR), but overlays are the even groups 6000-601E
             # (found by the fuzzer)
             oddities.damaged_tag(incoming / "moved", 0x00100010, 0x60CE0022, patient, implicit=True),
             # the Performed Procedure Step Description (cleaned: it names the accession number)
             # under Performed Procedure Type Description, which the table does not list and the
             # profile keeps: a description, cleaned too (found by the fuzzer)
             oddities.damaged_tag(incoming / "moved", 0x00400254, 0x00400255, patient),
             # Additional Patient History (LT: the patient's name and telephone) under Ethnic
             # Group (SH), which the profile keeps: text under a VR its attribute does not have
             # is cleaned (found by the fuzzer)
             oddities.damaged_tag(incoming / "moved", 0x001021B0, 0x00102160, patient),
             oddities.damaged_vr(incoming / "moved", 0x00181020, "SL", patient),
             # a CT released before, its Patient Identity Removed as IS: marked again, as CS (it
             # was internal-error: "YES" put under IS)
             oddities.damaged_vr(incoming / "moved", 0x00120062, "IS", patient, value="NO"),
             # a DICOMDIR record's path, named after the patient, copied into a CT
             oddities.directory_element(incoming / "moved", patient)]
    good += moved
    # nesting up to the limit is released (a real SR's content tree nests ~10 levels)
    good.append(oddities.deeply_nested(limit, make_patient(8), depth=MAX_NESTING))
    result = deid(*run_args(incoming, root / "out", key_file))
    return {"result": result, "good": good, "refused": refused, "out": root / "out",
            "quarantine": root / "out-quarantine", "patient": patient}


def test_each_is_quarantined_with_a_reason_to_act_on(scene) -> None:
    result = scene["result"]
    assert result.returncode == 3, result.stderr
    assert f"{len(scene['good'])} written" in result.stdout
    assert "internal-error" not in result.stdout + result.stderr
    entries = {}
    for entry in scene["quarantine"].iterdir():
        entries[(entry / "original.dcm").read_bytes()] = json.loads(
            (entry / "reason.json").read_text())
    assert len(entries) == len(REFUSED)
    for path in scene["refused"]:
        reason = entries[path.read_bytes()]  # the original is kept, unchanged
        assert (reason["code"], reason["stage"], reason["path"]) == REFUSED[path.name]
        assert reason["code"] in REASONS and reason["message"]
        if reason["code"] == "iod-check-failed":  # the input's damage, not a rule, is what to fix
            assert f"VR {DAMAGED_VR[path.name]}" in reason["message"]
            assert "damaged file" in reason["message"]
            assert "fix the profile" not in reason["message"]


def test_nesting_within_the_limit_is_released_whole(scene) -> None:
    released = [pydicom.dcmread(p, stop_before_pixels=True) for p in scene["out"].rglob("*.dcm")]
    assert len(released) == len(scene["good"])
    nested = [ds for ds in released if "ContentSequence" in ds]
    assert len(nested) == 1
    depth, item = 0, nested[0]
    while "ContentSequence" in item:
        depth, item = depth + 1, item.ContentSequence[0]
    assert depth == MAX_NESTING


def test_names_under_damaged_tags_do_not_go_out(scene) -> None:
    released = tree(scene["out"])
    assert len(released) == len(scene["good"])
    for relative, data in released.items():
        assert phi_found(data, scene["patient"]) == [], relative
        ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True)
        assert 0x00100110 not in ds and 0xFFFEE0DD not in ds and 0x00041500 not in ds
        assert ds.get("SoftwareVersions", "VB10B") == "VB10B"  # (as the CT's maker wrote it)
        assert ds[0x00120062].VR == "CS" and ds.PatientIdentityRemoved == "YES"
