"""Which rule wins: SOP-class + tag > tag > class > base profile > keep; then the IOD guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import (
    CTImageStorage,
    PositronEmissionTomographyImageStorage,
    RTStructureSetStorage,
    SegmentationStorage,
)

from deid.engine.compiler import compile_rules
from deid.profile.loader import load_profile
from deid.profile.model import Profile

ACQUISITION_DATE, CONTENT_DATE = 0x00080022, 0x00080023  # DA; Type 3 and Type 2 in a CT image
OPERATORS_NAME, SERIES_DATE, DEVICE_SERIAL = 0x00081070, 0x00080021, 0x00181000
REFERRING = 0x00080090


def _profile(tmp_path: Path, name: str, text: str) -> Profile:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n{text}")
    return load_profile(path)


LEVELS = {
    "sop_class_tag": "sop_classes:\n  CTImageStorage:\n    rules:\n      AcquisitionDate: empty\n",
    "tag": "rules:\n  AcquisitionDate: keep\n",
    "class": "classes:\n  dates: generalise_date\n",
    "base": "extends: ps3.15-basic\n",
}


def _with(levels: list[str]) -> str:
    return "".join(LEVELS[level] for level in levels)


@pytest.mark.parametrize(
    ("levels", "action", "source"),
    [
        (["base", "class", "tag", "sop_class_tag"], "empty", "sop_classes.CTImageStorage.rules.AcquisitionDate"),
        (["base", "class", "tag"], "keep", "rules.AcquisitionDate"),
        (["base", "class"], "generalise_date", "classes.dates"),
        (["base"], "remove", "ps3.15 AcquisitionDate: X/Z -> Type 3"),  # X/Z, Type 3 in CT: remove
        ([], "keep", "default: not listed"),
    ],
)
def test_precedence_on_one_attribute(tmp_path: Path, levels: list[str], action: str, source: str) -> None:
    profile = _profile(tmp_path, "p" + str(len(levels)), _with(levels))
    decision = compile_rules(profile, CTImageStorage).decide((), ACQUISITION_DATE, "DA")
    assert decision.action == action
    assert decision.source.endswith(source), decision.source


def test_a_sop_class_rule_applies_to_its_class_only(tmp_path: Path) -> None:
    profile = _profile(tmp_path, "all", _with(["base", "class", "tag", "sop_class_tag"]))
    assert compile_rules(profile, CTImageStorage).decide((), ACQUISITION_DATE, "DA").action == "empty"
    assert compile_rules(profile, RTStructureSetStorage).decide((), ACQUISITION_DATE, "DA").action == "keep"


def test_a_tag_rule_applies_at_every_depth(tmp_path: Path) -> None:
    profile = _profile(tmp_path, "deep", _with(["base", "tag"]))
    rules = compile_rules(profile, CTImageStorage)
    assert rules.decide((0x00081140, 0x00082112), ACQUISITION_DATE, "DA").action == "keep"


def test_a_class_rule_beats_the_base_for_every_date(tmp_path: Path) -> None:
    with_class = compile_rules(_profile(tmp_path, "c", _with(["base", "class"])), CTImageStorage)
    base_only = compile_rules(_profile(tmp_path, "b", _with(["base"])), CTImageStorage)
    assert with_class.decide((), CONTENT_DATE, "DA").action == "generalise_date"
    assert base_only.decide((), CONTENT_DATE, "DA").action == "empty"  # Z/D, Type 2 in CT


def test_vghtpe_patient_id_is_hash_in_ct_and_pseudonym_in_rtss(vghtpe: Profile) -> None:
    ct = compile_rules(vghtpe, CTImageStorage).decide((), 0x00100020, "LO")
    rt = compile_rules(vghtpe, RTStructureSetStorage).decide((), 0x00100020, "LO")
    assert (ct.action, ct.length) == ("hash", 32) and ct.source == "vghtpe: rules.PatientID"
    # a pseudonym of a text value is the same keyed hash, so both carry the same value
    assert (rt.action, rt.length) == ("hash", 32)
    assert rt.source == "vghtpe: sop_classes.RTStructureSetStorage.rules.PatientID"


def test_vghtpe_pseudonyms_resolve_by_vr(vghtpe: Profile) -> None:
    rules = compile_rules(vghtpe, CTImageStorage)
    assert rules.decide((), 0x00100010, "PN").action == "case_number"
    assert rules.decide((), 0x0020000D, "UI").action == "remap_uid"
    assert rules.decide((), 0x00080016, "UI").action != "remap_uid"  # SOP Class UID: not an instance


def test_private_overlay_and_curve_groups_are_removed_whole(vghtpe: Profile, basic: Profile) -> None:
    for profile in (vghtpe, basic):
        rules = compile_rules(profile, CTImageStorage)
        for tag, vr in ((0x00191030, "LO"), (0x00110010, "LO"), (0x60003000, "OW"), (0x60000010, "US"),
                        (0x50003000, "OW"), (0x50000005, "US")):
            assert rules.decide((), tag, vr).action == "remove", (profile.name, hex(tag))


# -- the IOD guard ------------------------------------------------------------------------------
def test_removal_of_a_type_2_attribute_becomes_empty(vghtpe: Profile) -> None:
    decision = compile_rules(vghtpe, CTImageStorage).decide((), REFERRING, "PN")
    assert decision.action == "empty"
    assert decision.source == "vghtpe: rules.ReferringPhysicianName"
    assert "remove -> empty: Type 2" in decision.note and "ReferringPhysicianName" in decision.note


def test_rtss_empties_referring_physician_by_its_own_rule(vghtpe: Profile) -> None:
    decision = compile_rules(vghtpe, RTStructureSetStorage).decide((), REFERRING, "PN")
    assert decision.action == "empty" and decision.note == ""


def test_removal_of_a_type_1_attribute_becomes_a_dummy(tmp_path: Path) -> None:
    profile = _profile(tmp_path, "t1", "rules:\n  StructureSetLabel: remove\n  FrameOfReferenceUID: remove\n"
                                       "  Modality: empty\n")
    rt = compile_rules(profile, RTStructureSetStorage)
    label = rt.decide((), 0x30060002, "SH")
    assert label.action == "dummy" and "Type 1" in label.note
    ct = compile_rules(profile, CTImageStorage)
    assert ct.decide((), 0x00200052, "UI").action == "remap_uid"  # a Type 1 UID gets a new UID
    assert ct.decide((), 0x00080060, "CS").action == "dummy"  # empty is not allowed in Type 1 either


def test_removal_of_a_type_3_attribute_stays_a_removal(vghtpe: Profile) -> None:
    decision = compile_rules(vghtpe, CTImageStorage).decide((), 0x00080080, "LO")  # InstitutionName
    assert decision.action == "remove" and decision.note == ""


# -- compound action codes of PS3.15 resolve from the attribute's Type in the IOD ---------------
@pytest.mark.parametrize(
    ("sop_class", "tag", "vr", "action"),
    [
        (CTImageStorage, OPERATORS_NAME, "PN", "remove"),             # X/Z/D, Type 3
        (RTStructureSetStorage, OPERATORS_NAME, "PN", "empty"),       # X/Z/D, Type 2
        (CTImageStorage, SERIES_DATE, "DA", "remove"),                # X/D, Type 3
        (PositronEmissionTomographyImageStorage, SERIES_DATE, "DA", "dummy"),  # X/D, Type 1
        (CTImageStorage, CONTENT_DATE, "DA", "empty"),                # Z/D, Type 2
        (SegmentationStorage, DEVICE_SERIAL, "LO", "dummy"),          # X/Z/D, Type 1
        (CTImageStorage, DEVICE_SERIAL, "LO", "remove"),              # X/Z/D, Type 3
    ],
)
def test_compound_codes_resolve_by_type(basic: Profile, sop_class: str, tag: int, vr: str, action: str) -> None:
    decision = compile_rules(basic, sop_class).decide((), tag, vr)
    assert decision.action == action, decision
    assert "/" in decision.source and "Type" in decision.source


def test_options_change_the_base_action(basic: Profile, vghtpe: Profile) -> None:
    # Patient's Sex: Z in the basic profile, K with Retain Patient Characteristics
    assert compile_rules(basic, CTImageStorage).decide((), 0x00100040, "CS").action == "empty"
    assert compile_rules(vghtpe, CTImageStorage).decide((), 0x00100040, "CS").action == "keep"
    # Device Serial Number: vghtpe's own rule empties it although its option would keep it
    assert compile_rules(vghtpe, CTImageStorage).decide((), DEVICE_SERIAL, "LO").action == "empty"
