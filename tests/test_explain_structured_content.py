"""`deid explain` for an SR class shows the TEXT allow-list, the placeholder and the concept rules,
with the profile each comes from; image classes do not get the section."""

from __future__ import annotations

from support import deid


def test_explain_lists_the_concept_rules_of_an_sr() -> None:
    result = deid("explain", "--profile", "vghtpe", "--sop-class", "Comprehensive3DSRStorage")
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("SR content items", 1)[1]
    assert "(121014, DCM) Device Observer Manufacturer  (vghtpe: structured_content.keep_text[0])" \
        in section
    assert "its value becomes 'REMOVED'" in section
    rows = {line.split()[0]: line for line in section.splitlines()[4:] if line.strip()}
    assert "Tracking Identifier" in rows["112039"] and "pseudonym" in rows["112039"]
    assert "ps3.15-basic: structured_content.concepts" in rows["112039"]
    assert "pseudonym as (0010,0020) PatientID" in rows["121030"]
    assert "vghtpe: structured_content.concepts[0]" in rows["121030"]
    assert "remove" in rows["128774"] and "Login Name" in rows["128774"]
    assert "121014" not in rows  # kept by vghtpe, not removed


def test_without_the_option_no_text_is_kept() -> None:
    result = deid("explain", "--profile", "ps3.15-basic", "--sop-class", "EnhancedSRStorage")
    assert "TEXT kept: none (PS3.15 Content Sequence: D" in result.stdout


def test_an_image_class_has_no_sr_section() -> None:
    result = deid("explain", "--profile", "vghtpe", "--sop-class", "CTImageStorage")
    assert result.returncode == 0 and "SR content items" not in result.stdout
