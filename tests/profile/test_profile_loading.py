"""Profiles load, and a bad profile is refused with the file, the key and the rule in the message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import RTStructureSetStorage

from deid.errors import ProfileError, UsageError
from deid.profile.loader import builtin_profiles, load_profile


def test_builtin_profiles_are_listed() -> None:
    assert {"vghtpe", "ps3.15-basic"} <= set(builtin_profiles())


def test_ps3_15_basic_loads() -> None:
    profile = load_profile("ps3.15-basic")
    assert profile.name == "ps3.15-basic" and profile.standard_table
    assert profile.options == () and profile.tag_rules == {}
    assert profile.chain == ("ps3.15-basic",)
    assert len(profile.sha256) == 64


def test_vghtpe_loads_on_the_basic_profile_with_its_options() -> None:
    profile = load_profile("vghtpe")
    assert profile.chain == ("ps3.15-basic", "vghtpe") and profile.standard_table
    # the three options the hospital's table ticks, and Clean Structured Content (SR trees cleaned)
    assert set(profile.options) == {
        "retain_longitudinal_modified_dates", "retain_patient_characteristics", "retain_device_identity",
        "clean_structured_content"}
    assert (profile.text_with_identity, profile.content_value_removed) == ("replace", "remove_item")
    assert (profile.text_on_identity, profile.text_placeholder) == ("replace", "[removed]")
    assert profile.dciodvfy_gate is False
    assert profile.tag_rules[0x00100020].action == "hash" and profile.tag_rules[0x00100020].length == 32
    assert profile.tag_rules[0x00080050].length == 16
    rtss = profile.sop_class_rules[RTStructureSetStorage]
    assert rtss[0x00100020].action == "pseudonym" and rtss[0x00080090].action == "empty"
    assert {name: rule.action for name, rule in profile.class_rules.items()} == {
        "instance_uids": "remap_uid", "dates": "generalise_date", "private": "remove",
        "overlays": "remove", "curves": "remove"}
    assert len(profile.method_description) <= 64


def test_a_profile_by_path_extends_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("name: base\nrules:\n  StationName: remove\n")
    (tmp_path / "site.yaml").write_text("name: site\nextends: base.yaml\nrules:\n  InstitutionName: keep\n")
    profile = load_profile(tmp_path / "site.yaml")
    assert profile.chain == ("base", "site")
    assert set(profile.tag_rules) == {0x00081010, 0x00080080}


def test_unknown_profile_name_lists_the_builtin_ones() -> None:
    with pytest.raises(ProfileError, match="vghtpe"):
        load_profile("no-such-profile")


def test_a_profile_error_is_a_usage_error() -> None:
    assert issubclass(ProfileError, UsageError)  # exit code 2 on the command line


# (yaml text, the key the message must name, words of the rule the message must contain)
BAD = {
    "unknown_keyword": ("rules:\n  PatientNme: remove\n", "rules.PatientNme", ["unknown tag or keyword"]),
    "unknown_action": ("rules:\n  PatientName: obliterate\n", "rules.PatientName", ["unknown action", "obliterate"]),
    "date_action_on_LO": ("rules:\n  InstitutionName: generalise_date\n", "rules.InstitutionName",
                          ["generalise_date", "VR LO"]),
    "hash_20_on_SH": ("rules:\n  AccessionNumber: {action: hash, length: 20}\n", "rules.AccessionNumber",
                      ["hash", "VR SH", "20"]),
    "replace_too_long_for_SH": ("rules:\n  AccessionNumber: {action: replace, value: ABCDEFGHIJKLMNOPQ}\n",
                                "rules.AccessionNumber", ["replace", "SH"]),
    "remap_uid_on_PN": ("rules:\n  PatientName: remap_uid\n", "rules.PatientName", ["remap_uid", "VR PN"]),
    "keyword_and_tag_for_one_attribute": ("rules:\n  PatientName: remove\n  '(0010,0010)': keep\n",
                                          "(0010,0010)", ["conflicting", "PatientName"]),
    "unknown_option": ("options: [retain_everything]\n", "options[0]", ["unknown option", "retain_everything"]),
    "unknown_sop_class": ("sop_classes:\n  CTImageStorag:\n    rules:\n      PatientName: remove\n",
                          "sop_classes.CTImageStorag", ["unknown SOP class"]),
    "class_action_that_cannot_apply": ("classes:\n  private: hash\n", "classes.private", ["hash", "cannot apply"]),
    "unknown_top_level_key": ("rule:\n  PatientName: remove\n", "rule", ["not allowed"]),
    "unknown_text_policy": ("structured_content:\n  text_with_identity: delete\n",
                            "structured_content.text_with_identity", ["delete", "remove_item", "quarantine"]),
    "unknown_structured_content_key": ("structured_content:\n  text: remove_item\n", "structured_content",
                                       ["not allowed", "text"]),
    "concept_given_twice": (("structured_content:\n  keep_text:\n    - {code: '1', scheme: DCM, meaning: A}\n"
                             "  concepts:\n    - {code: '1', scheme: DCM, meaning: A, action: remove}\n"),
                            "structured_content.concepts[0]", ["(1, DCM)", "keep_text[0]", "conflicting"]),
    "unknown_concept_action": (("structured_content:\n  concepts:\n"
                                "    - {code: '1', scheme: DCM, meaning: A, action: obliterate}\n"),
                               "structured_content.concepts.0.action", ["obliterate"]),
    "concept_replace_without_value": (("structured_content:\n  concepts:\n"
                                       "    - {code: '1', scheme: DCM, meaning: A, action: replace}\n"),
                                      "structured_content.concepts[0]", ["replace", "value"]),
    "concept_same_as_without_a_pseudonym": (
        ("structured_content:\n  concepts:\n"
         "    - {code: '121030', scheme: DCM, meaning: Subject ID, action: pseudonym, same_as: PatientID}\n"),
        "structured_content.concepts[0].same_as", ["no rule hashes or pseudonymises", "PatientID"]),
    "keep_text_without_clean_structured_content": (
        ("extends: ps3.15-basic\nstructured_content:\n  keep_text:\n"
         "    - {code: '121106', scheme: DCM, meaning: Comment}\n"),
        "structured_content.keep_text", ["clean_structured_content"]),
    "dciodvfy_gate_not_a_boolean": ("release_check:\n  dciodvfy: maybe\n", "release_check.dciodvfy",
                                    ["maybe", "boolean"]),
}


def test_structured_content_settings_are_inherited_and_overridden(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text("name: site\nextends: vghtpe\nstructured_content:\n"
                                        "  text_with_identity: quarantine\nrelease_check:\n  dciodvfy: true\n")
    profile = load_profile(tmp_path / "site.yaml")
    assert (profile.text_with_identity, profile.content_value_removed) == ("quarantine", "remove_item")
    assert profile.dciodvfy_gate is True
    basic = load_profile("ps3.15-basic")  # the defaults: fail closed on text, remove an emptied item
    assert (basic.text_with_identity, basic.content_value_removed, basic.dciodvfy_gate) == (
        "quarantine", "remove_item", False)


def test_keep_text_and_concept_rules_are_inherited_and_overridden(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        "name: site\nextends: vghtpe\nstructured_content:\n  placeholder: '[text removed]'\n"
        "  keep_text:\n    - {code: '121106', scheme: DCM, meaning: Comment}\n"
        "    - {code: '112039', scheme: DCM, meaning: Tracking Identifier}\n"
        "  concepts:\n    - {code: '121014', scheme: DCM, meaning: Device Observer Manufacturer, "
        "action: replace, value: ACME}\n")
    site, vghtpe, basic = (load_profile(tmp_path / "site.yaml"), load_profile("vghtpe"),
                           load_profile("ps3.15-basic"))
    assert set(vghtpe.kept_text) == {("121014", "DCM"), ("121015", "DCM")}
    assert set(site.kept_text) == {("121015", "DCM"), ("121106", "DCM"), ("112039", "DCM")}
    assert site.concept_rules[("121014", "DCM")].value == "ACME"
    assert ("112039", "DCM") not in site.concept_rules  # kept as it is, no pseudonym
    assert basic.concept_rules[("112039", "DCM")].action == "pseudonym"
    assert site.concept_rules[("121008", "DCM")].source == "ps3.15-basic: structured_content.concepts[0]"
    assert (site.content_placeholder, vghtpe.content_placeholder) == ("[text removed]", "REMOVED")
    assert site.text_not_kept == vghtpe.text_not_kept == "remove_item"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_profile_is_refused_naming_file_key_and_rule(tmp_path: Path, case: str) -> None:
    text, key, words = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text("name: bad\n" + text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(("where", "line"), [("rules", 4), ("sop_classes.RTStructureSetStorage.rules", 6)])
def test_a_key_given_twice_is_refused_as_conflicting(tmp_path: Path, where: str, line: int) -> None:
    block = "rules:\n  PatientName: remove\n  PatientName: keep\n"
    if where != "rules":
        block = "sop_classes:\n  RTStructureSetStorage:\n    " + block.replace("\n  ", "\n      ")
    path = tmp_path / "twice.yaml"
    path.write_text("name: bad\n" + block)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message and "'PatientName'" in message
    assert "twice" in message and "conflicting" in message
    assert f"line {line}:" in message  # where the second one is


def test_a_bad_rule_in_a_parent_is_reported_in_the_parent(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("name: parent\nrules:\n  StationName: generalise_date\n")
    (tmp_path / "child.yaml").write_text("name: child\nextends: parent.yaml\n")
    with pytest.raises(ProfileError, match=r"parent\.yaml: rules\.StationName"):
        load_profile(tmp_path / "child.yaml")


def test_extends_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nextends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("name: b\nextends: a.yaml\n")
    with pytest.raises(ProfileError, match="cycle"):
        load_profile(tmp_path / "a.yaml")


def test_fitting_rules_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("name: ok\nrules:\n  AccessionNumber: {action: hash, length: 16}\n"
                    "  InstitutionName: {action: replace, value: SITE A}\n  PatientID: {action: hash, length: 64}\n")
    profile = load_profile(path)
    assert profile.tag_rules[0x00080080].value == "SITE A"


def test_the_object_size_limit_is_set_inherited_or_refused(tmp_path: Path) -> None:
    assert load_profile("vghtpe").max_object_bytes == 2 << 30  # the default
    site = tmp_path / "site.yaml"
    site.write_text("name: site\nextends: vghtpe\nlimits: {max_object_size: 4 GiB}\n")
    assert load_profile(site).max_object_bytes == 4 << 30
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nextends: site.yaml\n")
    assert load_profile(child).max_object_bytes == 4 << 30
    site.write_text("name: site\nlimits: {max_object_size: 3 parsecs}\n")
    with pytest.raises(ProfileError, match="limits.max_object_size"):
        load_profile(site)
