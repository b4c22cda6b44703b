"""Pixel regions and pseudonym labels are validated when a profile loads; errors name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import SecondaryCaptureImageStorage

from deid.errors import ProfileError
from deid.explain import explain, render
from deid.profile.loader import load_profile
from deid.synthetic.fused import CAPTURE_MODEL, burned_in_boxes


def _load(tmp_path: Path, body: str, name: str = "site"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nextends: vghtpe\n{body}")
    return load_profile(path)


LABEL = "pseudonym:\n  labels:\n    PatientID: {pattern: '%s'}\n"
REGION = "pixels:\n  regions:\n    - {name: r, match: {%s}, blank: [%s]}\n"


def test_the_lung_profile_keeps_the_group_letter_and_blanks_its_screenshots() -> None:
    profile = load_profile("lung-pet-ct-dx")
    label = profile.labels[0x00100020]
    assert label.pattern.groups == 1 and label.on_mismatch == "quarantine" and label.separator == "-"
    for group in "ABEG":
        assert label.pattern.search(f"Lung_Dx-{group}0042").group(1) == group
        assert label.pattern.search(f"{group}0042").group(1) == group
    assert label.pattern.search("Lung_Dx-X0042") is None
    (region,) = profile.pixel_regions
    assert region.match["sop_class"] == (SecondaryCaptureImageStorage,)
    assert region.match["capture_model"] == (CAPTURE_MODEL.upper(),)
    assert list(region.boxes) == burned_in_boxes(512)  # the builder's text is where the profile blanks


@pytest.mark.parametrize(("pattern", "message"), [
    ("^([ABEG]", "not a regular expression"),
    ("^[ABEG]", "exactly one group"),
    ("^([AB])([EG])", "exactly one group"),
])
def test_a_label_pattern_must_compile_with_one_group(tmp_path: Path, pattern: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message) as caught:
        _load(tmp_path, LABEL % pattern)
    assert "site.yaml" in str(caught.value) and "pseudonym.labels.PatientID.pattern" in str(caught.value)


def test_a_label_needs_a_hash_or_pseudonym_rule_and_a_text_attribute(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no rule hashes or pseudonymises"):
        _load(tmp_path, "pseudonym:\n  labels:\n    StudyID: {pattern: '^(S)'}\n")
    with pytest.raises(ProfileError, match="is US"):
        _load(tmp_path, "pseudonym:\n  labels:\n    Rows: {pattern: '^(1)'}\n")
    with pytest.raises(ProfileError, match="separator"):
        _load(tmp_path, "pseudonym:\n  labels:\n    PatientID: {pattern: '^(A)', separator: '\\\\'}\n")
    with pytest.raises(ProfileError, match="on_mismatch"):
        _load(tmp_path, "pseudonym:\n  labels:\n    PatientID: {pattern: '^(A)', on_mismatch: guess}\n")


def test_a_label_on_a_pseudonym_rule_of_one_sop_class_is_accepted(tmp_path: Path) -> None:
    profile = _load(tmp_path, "rules:\n  PatientID: keep\nsop_classes:\n  RTStructureSetStorage:\n    rules:\n"
                    "      PatientID: pseudonym\n" + LABEL % "^([A-Z])")
    assert profile.labels[0x00100020].pattern.pattern == "^([A-Z])"


@pytest.mark.parametrize(("match", "blank", "message"), [
    ("rows: 512", "[0, 0, 0, 10]", "width and height of at least 1"),
    ("rows: 512", "[0, 0, 10]", "blank"),
    ("rows: -1", "[0, 0, 10, 10]", "positive whole numbers"),
    ("sop_class: NoSuchStorage", "[0, 0, 10, 10]", "unknown SOP class"),
    ("station: CT01", "[0, 0, 10, 10]", "station"),
])
def test_a_bad_region_is_refused(tmp_path: Path, match: str, blank: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message) as caught:
        _load(tmp_path, REGION % (match, blank))
    assert "site.yaml" in str(caught.value) and "pixels.regions" in str(caught.value)


def test_region_names_are_unique(tmp_path: Path) -> None:
    body = "pixels:\n  regions:\n" + "    - {name: r, match: {rows: 8}, blank: [[0, 0, 1, 1]]}\n" * 2
    with pytest.raises(ProfileError, match="given twice"):
        _load(tmp_path, body)


def test_a_profile_regions_come_before_the_inherited_ones(tmp_path: Path) -> None:
    _load(tmp_path, REGION % ("rows: 512", "[0, 0, 10, 10]"), name="base")
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nextends: base.yaml\npixels:\n  regions:\n"
                     "    - {name: mine, match: {modality: ot}, blank: [[1, 2, 3, 4]]}\n")
    profile = load_profile(child)
    assert [r.name for r in profile.pixel_regions] == ["mine", "r"]
    assert profile.pixel_regions[0].match["modality"] == ("OT",)


def test_explain_lists_the_labels_and_the_regions_of_the_sop_class() -> None:
    profile = load_profile("lung-pet-ct-dx")
    text = render(explain(profile, "SecondaryCaptureImageStorage", only_profile=True), profile,
                  "SecondaryCaptureImageStorage")
    assert "Labels kept in pseudonyms" in text and "(0010,0020) PatientID" in text
    assert "Pixel regions blanked" in text and "[0, 0, 320, 44] [0, 486, 320, 26]" in text
    assert "capture_model=SYNGO.VIA" in text and "sop_class=SecondaryCaptureImageStorage" in text
    ct = render(explain(profile, "CTImageStorage", only_profile=True), profile, "CTImageStorage")
    assert "Pixel regions blanked" not in ct and "Labels kept in pseudonyms" in ct


def test_ocr_settings_load_with_the_default_selection_and_are_inherited(tmp_path: Path) -> None:
    assert load_profile("vghtpe").ocr is None and load_profile("vghtpe").lossy_pixels == "quarantine"
    parent = _load(tmp_path, "pixels:\n  lossy: reencode\n  ocr: {blank: identity}\n", "parent")
    assert parent.ocr.blank == "identity" and parent.ocr.at_risk and parent.ocr.min_confidence == 60
    assert parent.ocr.describe_select() == "at risk or modality=US|SC|XA|RF|OT or burned_in=ABSENT"
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nextends: parent.yaml\n")
    assert load_profile(child).ocr == parent.ocr and load_profile(child).lossy_pixels == "reencode"
    child.write_text("name: child\nextends: parent.yaml\npixels:\n  ocr: {enabled: false}\n")
    assert load_profile(child).ocr is None


def test_ocr_selection_entries_are_checked(tmp_path: Path) -> None:
    profile = _load(tmp_path, "pixels:\n  ocr:\n    at_risk: false\n    select:\n"
                    "      - {sop_class: UltrasoundImageStorage, burned_in: [no, absent]}\n"
                    "      - {manufacturer: acme, rows: 512}\n")
    first, second = profile.ocr.select
    assert first == {"sop_class": ("1.2.840.10008.5.1.4.1.1.6.1",), "burned_in": ("NO", "ABSENT")}
    assert second == {"manufacturer": ("ACME",), "rows": ("512",)} and not profile.ocr.at_risk
    for body, words in (("    select: [{burned_in: maybe}]\n", "YES, NO and ABSENT"),
                        ("    select: [{colour: red}]\n", "colour"),
                        ("    select: [{sop_class: NoSuchStorage}]\n", "unknown SOP class"),
                        ("    blank: some\n", "blank"), ("    min_confidence: 101\n", "min_confidence")):
        with pytest.raises(ProfileError, match=words):
            _load(tmp_path, "pixels:\n  ocr:\n" + body)


def test_explain_says_what_ocr_reads_and_blanks(tmp_path: Path) -> None:
    profile = _load(tmp_path, "pixels:\n  lossy: reencode\n  ocr: {blank: identity, select: [{modality: US}]}\n")
    us = "1.2.840.10008.5.1.4.1.1.6.1"
    text = render(explain(profile, us), profile, us)
    assert "Burned-in text read by OCR (Tesseract) and blanked (identity" in text
    assert "at risk or modality=US; lossy compressed pixels: reencode" in text
