"""Kept free text is cleaned of the identity values the profile removes elsewhere in the object and of
the deny-list: the placeholder fits the VR, the profile can quarantine instead, nothing else changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from support import SIZE, release

from deid.engine.review import load_deny_list, vr_placeholder
from deid.errors import ObjectError, ProfileError
from deid.profile.loader import load_profile, with_deny_list
from deid.synthetic import four_phase_ct


@pytest.fixture()
def ct(patient) -> Dataset:
    return four_phase_ct(patient, slices=1, size=SIZE)["P"][0]


def site(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text("name: site\nextends: vghtpe\n" + body, encoding="utf-8")
    return path


def test_a_value_too_long_for_its_vr_becomes_the_placeholder_alone(ct, vghtpe, key, patient) -> None:
    family = patient.name.split("^")[0]
    ct.BodyPartExamined = family  # CS: upper case, digits, space and underscore only
    ct.ImageComments = f"{family} liver"  # LT: room enough
    ct.SeriesDescription = " ".join([family] * 7)  # LO: 7 placeholders need 69 of its 64 characters
    ds, _ = release(ct, vghtpe, key)
    assert ds.BodyPartExamined == "REMOVED"
    assert ds.ImageComments == "[removed] liver"
    assert ds.SeriesDescription == "[removed]"


def test_an_sh_label_that_would_overflow_is_the_placeholder(patient, key, vghtpe) -> None:
    from deid.synthetic import rtss

    images = four_phase_ct(patient, slices=2, size=SIZE)["P"]
    family = patient.name.split("^")[0]
    structure = rtss(patient, images, label=f"{family} {family} {family}"[:16])
    ds, _ = release(structure, vghtpe, key)
    assert ds.StructureSetLabel == "[removed]"


def test_code_meanings_and_nested_text_are_cleaned(ct, vghtpe, key, patient) -> None:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator = "L1", "99LOCAL"
    item.CodeMeaning = f"Liver protocol of Dr {patient.referring_physician.split('^')[0]}"
    ct.AnatomicRegionSequence = [item]
    ds, _ = release(ct, vghtpe, key)
    assert ds.AnatomicRegionSequence[0].CodeMeaning == "Liver protocol of Dr [removed]"
    assert ds.AnatomicRegionSequence[0].CodeValue == "L1"


def test_every_attribute_the_dictionary_names_as_prose_is_cleaned_but_not_device_names(
        ct, vghtpe, key, patient) -> None:
    """A description the table does not list (kept by default) is cleaned like the listed ones;
    a device's name is not, though a test site's Institution Name is its maker's."""
    family = patient.name.split("^")[0]
    ct.InstitutionName = "TOSHIBA"
    ct.Manufacturer = "TOSHIBA_MEC"
    ct.PerformedProcedureTypeDescription = f"CT liver {patient.accession_number} for {family}"
    ct.InterventionDescription = f"{family}: contrast given late"
    ds, _ = release(ct, vghtpe, key)
    assert ds.PerformedProcedureTypeDescription == "CT liver [removed] for [removed]"
    assert ds.InterventionDescription == "[removed]: contrast given late"
    assert ds.Manufacturer == "TOSHIBA_MEC"


def test_dates_the_profile_changes_are_found_in_the_forms_text_writes(ct, vghtpe, key, patient) -> None:
    date = patient.study_date
    ct.ImageComments = f"prior {date[:4]}-{date[4:6]}-{date[6:]}, next {date[6:]}/{date[4:6]}/{date[:4]}"
    ds, _ = release(ct, vghtpe, key)
    assert ds.ImageComments == "prior [removed], next [removed]"


def test_text_naming_nothing_is_left_byte_for_byte(ct, vghtpe, key) -> None:
    ct.ImageComments = "IV contrast, CHENG protocol"  # a longer word than a name component
    _, data = release(ct, vghtpe, key)
    assert b"IV contrast, CHENG protocol" in data


def test_the_profile_can_quarantine_instead(tmp_path: Path, ct, key, patient) -> None:
    profile = load_profile(site(tmp_path, "free_text:\n  on_identity: quarantine\n"))
    ct.SeriesDescription = f"for {patient.operator.split('^')[1]}"
    with pytest.raises(ObjectError) as caught:
        release(ct, profile, key)
    assert caught.value.code == "text-contains-identity" and caught.value.path == "(0008,103E)"
    for value in patient.phi_values():
        assert value not in caught.value.message


def test_the_deny_list_of_the_profile_and_of_the_flag_are_both_used(tmp_path: Path, ct, key) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "staff.txt").write_text("\ufeff# staff\nDr. Lin Wei-Ting\n\nxy\n", encoding="utf-8")
    extra = tmp_path / "streets.txt"
    extra.write_text("Zhongxiao East Road\n", encoding="utf-8")
    profile = load_profile(site(tmp_path, "free_text:\n  deny_list: lists/staff.txt\n  placeholder: '***'\n"))
    assert profile.deny_list == ("Dr. Lin Wei-Ting",)  # blank, comment and 2-character lines left out
    profile = with_deny_list(profile, extra)
    assert profile.deny_list == ("Dr. Lin Wei-Ting", "Zhongxiao East Road") and profile.deny_list_sha256
    ct.ImageComments = "seen by dr. lin wei-ting at ZHONGXIAO  EAST ROAD"
    ds, _ = release(ct, profile, key)
    assert ds.ImageComments == "seen by *** at ***"


@pytest.mark.parametrize(("body", "words"), [
    ("free_text:\n  deny_list: missing.txt\n", ["free_text.deny_list", "cannot read"]),
    ("free_text:\n  placeholder: 'far too long a placeholder'\n", ["free_text.placeholder", "16"]),
    ("free_text:\n  placeholder: 'a\\\\b'\n", ["free_text.placeholder"]),
    ("free_text:\n  on_identity: remove\n", ["free_text.on_identity", "replace", "quarantine"]),
])
def test_a_bad_free_text_block_is_refused(tmp_path: Path, body: str, words: list[str]) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(site(tmp_path, body))
    for word in words:
        assert word in str(caught.value)


def test_a_deny_list_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "staff.txt"
    path.write_bytes("陳美玲\n".encode("big5"))
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_deny_list(path)


def test_the_placeholder_takes_the_form_of_the_vr() -> None:
    assert vr_placeholder("CS", "[removed]") == "REMOVED"
    assert vr_placeholder("CS", "***") == "REMOVED"
    assert vr_placeholder("LO", "[removed]") == "[removed]"
