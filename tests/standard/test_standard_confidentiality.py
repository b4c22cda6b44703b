"""PS3.15 Table E.1-1 / E.1-1a as packaged in deid.standard."""

from collections import Counter
from dataclasses import FrozenInstanceError

import pytest

from deid import standard
from deid.standard import (
    ACTION_CODES,
    OPTION_COLUMNS,
    ConfidentialityRow,
    confidentiality_rows,
    private_row,
    row_for_tag,
)


def test_row_count_and_basic_profile_counts():
    rows = confidentiality_rows()
    assert len(rows) == 657
    assert Counter(row.basic for row in rows) == {
        "X": 417,
        "D": 93,
        "U": 55,
        "Z": 42,
        "X/D": 23,
        "X/Z": 11,
        "X/Z/D": 8,
        "Z/D": 6,
        "X/Z/U*": 2,
    }
    assert sum(row.retired for row in rows) == 102
    assert sum(not row.in_std_comp_iod for row in rows) == 184


def test_rows_are_cached_and_immutable():
    rows = confidentiality_rows()
    assert rows is confidentiality_rows()
    assert isinstance(rows, tuple)
    row = rows[0]
    with pytest.raises(FrozenInstanceError):
        row.basic = "K"  # type: ignore[misc]
    with pytest.raises(TypeError):
        row.options["retain_uids"] = "K"  # type: ignore[index]
    hash(row)


def test_option_columns():
    assert OPTION_COLUMNS == (
        "retain_safe_private",
        "retain_uids",
        "retain_device_identity",
        "retain_institution_identity",
        "retain_patient_characteristics",
        "retain_longitudinal_full_dates",
        "retain_longitudinal_modified_dates",
        "clean_descriptors",
        "clean_structured_content",
        "clean_graphics",
    )
    for row in confidentiality_rows():
        assert tuple(row.options) == OPTION_COLUMNS
        assert set(row.options.values()) <= {None, "K", "C"}


def test_exact_rows_and_options():
    age = row_for_tag(0x00101010)
    assert age.keyword == "PatientAge" and age.tag == 0x00101010
    assert age.basic == "X"
    assert age.options["retain_patient_characteristics"] == "K"
    assert age.action("basic_profile") == "X"
    assert age.action("retain_patient_characteristics") == "K"

    study_date = row_for_tag(0x00080020)
    assert study_date.keyword == "StudyDate"
    assert study_date.basic == "Z"
    assert study_date.options["retain_longitudinal_modified_dates"] == "C"
    assert study_date.options["retain_longitudinal_full_dates"] == "K"

    accession = row_for_tag(0x00080050)
    assert accession.basic == "Z" and all(v is None for v in accession.options.values())

    assert row_for_tag(0x00080018).basic == "U"  # SOP Instance UID
    assert row_for_tag(0x00080018).options["retain_uids"] == "K"
    assert row_for_tag(0x00181000).options["retain_device_identity"] == "K"  # Device Serial Number
    assert row_for_tag(0x00080080).options["retain_institution_identity"] == "K"  # Institution Name
    assert row_for_tag(0x00321033).options["clean_descriptors"] == "C"  # Requesting Service, 2026d
    assert row_for_tag(0x00102160).retired  # Ethnic Group, retired in 2026d
    assert row_for_tag(0x00100010).keyword == "PatientName"
    assert row_for_tag(0x00280010) is None  # Rows: not in the table


def test_keywords_newer_than_pydicom_are_present():
    keywords = {row.keyword for row in confidentiality_rows()}
    assert "NameToUse" in keywords


def test_overlay_and_curve_rows():
    overlay = row_for_tag(0x60003000)
    assert overlay.name == "Overlay Data" and overlay.tag is None
    assert (overlay.match_value, overlay.match_mask) == (0x60003000, 0xFF00FFFF)
    assert row_for_tag(0x601E3000) is overlay
    assert row_for_tag(0x60024000).name == "Overlay Comments"
    assert row_for_tag(0x60020010) is None  # Overlay Rows: not in the table

    curve = row_for_tag(0x50000000)
    assert curve.name == "Curve Data" and curve.keyword is None and curve.tag is None
    assert row_for_tag(0x50023000) is curve
    assert row_for_tag(0x50FE0010) is curve
    assert curve.basic == "X" and curve.options["clean_graphics"] == "C"


def test_private_tags_are_left_to_the_caller():
    assert row_for_tag(0x00091010) is None
    assert row_for_tag(0x60013000) is None  # odd group: private, not overlay
    assert row_for_tag(0x50010010) is None
    private = private_row()
    assert private.is_private_row and private.tag is None and private.match_mask is None
    assert private.basic == "X" and private.options["retain_safe_private"] == "C"
    assert private.matches(0x00091010) and private.matches(0x60013000)
    assert not private.matches(0x00100010)


def test_matches():
    overlay = row_for_tag(0x60003000)
    assert overlay.matches(0x60043000)
    assert not overlay.matches(0x60053000)
    assert not overlay.matches(0x60043001)
    age = row_for_tag(0x00101010)
    assert age.matches(0x00101010) and not age.matches(0x00101011)


def test_every_exact_row_is_found_by_its_tag():
    for row in confidentiality_rows():
        if row.tag is not None:
            assert row_for_tag(row.tag) is row
            assert row.matches(row.tag)


def test_action_codes():
    assert len(ACTION_CODES) == 11
    assert set(ACTION_CODES) == {
        "D",
        "Z",
        "X",
        "K",
        "C",
        "U",
        "Z/D",
        "X/Z",
        "X/D",
        "X/Z/D",
        "X/Z/U*",
    }
    assert ACTION_CODES["X"].startswith("remove")
    assert {row.basic for row in confidentiality_rows()} <= set(ACTION_CODES)
    with pytest.raises(TypeError):
        standard.action_codes()["Q"] = "nope"  # type: ignore[index]


def test_row_type():
    assert all(isinstance(row, ConfidentialityRow) for row in confidentiality_rows())
    assert standard.EDITION == "2026d"
    assert "NEMA" in standard.PS3_15_ACKNOWLEDGEMENT
