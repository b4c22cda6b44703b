"""Kept free text is collected as released, its object's identity values replaced (flagged if any stay)."""

from __future__ import annotations

import json

import pytest
from support import release, to_bytes

from deid.engine.deidentifier import Deidentifier
from deid.engine.compiler import compile_rules
from deid.engine.review import KEPT_TEXT, IdentityTokens, collect_identity, date_tokens, name_tokens, peek
from deid.io.reader import read_object
from deid.synthetic import make_patient
from deid.synthetic.free_text import identity_in_free_text
from deid.synthetic.oddities import secondary_capture


def test_name_tokens_are_components_words_and_the_ideographic_whole() -> None:
    assert name_tokens("CHEN^MEI-LING=陳^美玲") == {
        "CHEN", "MEI-LING", "MEI", "LING", "CHEN MEI-LING", "MEI-LING CHEN", "陳美玲", "陳 美玲", "美玲 陳"}
    assert name_tokens("LI^YU") == {"LI YU", "YU LI"}  # components shorter than 3: only written together
    assert name_tokens("VAN DER BERG^ANNA") == {"VAN DER BERG", "VAN", "DER", "BERG", "ANNA",
                                                "VAN DER BERG ANNA", "ANNA VAN DER BERG"}


def test_date_tokens_are_the_forms_text_writes() -> None:
    assert {"19480608", "1948-06-08", "1948/06/08", "08/06/1948"} <= date_tokens("19480608")


@pytest.mark.parametrize("text, found", [
    ("Follow-up of chen mei-ling", True),       # case-insensitive
    ("Contour for Mei-Ling", True),
    ("CT KITCHEN PROTOCOL", False),             # inside a longer word: no hit
    ("ID a123456789 requested", True),
    ("NHI-A123456789", True),
    ("XA123456789", False),
    ("born 1948-06-08", True),
    ("陳美玲 複診", True),                        # ideographic name written together
    ("LI YU", True),                            # a short name written whole
    ("LI", False),
    ("", False),
])
def test_identity_tokens_find_whole_words_only(text: str, found: bool, vghtpe) -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientName = "CHEN^MEI-LING=陳^美玲"
    ds.PatientID = "A123456789"
    ds.PatientBirthDate = "19480608"
    ds.ReferringPhysicianName = "LI^YU"
    rules = compile_rules(vghtpe, "1.2.840.10008.5.1.4.1.1.2")
    assert IdentityTokens(collect_identity(ds, rules)).found_in(text) is found


def test_release_collects_kept_text_with_the_values_naming_the_patient_replaced(vghtpe, key) -> None:
    patient = make_patient(3)
    ds = read_object(to_bytes(identity_in_free_text(patient)))
    result = Deidentifier(vghtpe, key).deidentify(ds)
    assert result.kept_text["ImageComments"] == ["follow-up of [removed]"]
    assert result.kept_text["SeriesDescription"] == ["Recon [removed]-b"]
    assert result.kept_text["BodyPartExamined"] == ["ABDOMEN"]
    assert set(result.kept_text) <= set(KEPT_TEXT.values())
    assert result.text_replaced == {"ImageComments": 1, "SeriesDescription": 1}  # not StudyDescription
    assert result.flagged_text == []


def test_a_clean_ct_has_kept_text_and_nothing_flagged(vghtpe, key, sample_study) -> None:
    ct = min(sample_study.rglob("CT_P_*.dcm"))
    result = Deidentifier(vghtpe, key).deidentify(read_object(ct.read_bytes()))
    assert result.kept_text["StudyDescription"] and result.kept_text["SeriesDescription"]
    assert result.flagged_text == []


def test_the_screenshot_comment_naming_the_patient_is_cleaned(tmp_path, vghtpe, key, patient) -> None:
    path = secondary_capture(tmp_path, patient, burned_in="NO")
    result = Deidentifier(vghtpe, key).deidentify(read_object(path.read_bytes()))
    assert result.text_replaced.get("ImageComments", 0) >= 1 and result.flagged_text == []
    assert "[removed]" in result.kept_text["ImageComments"][0]


def test_applied_names_top_level_changes_only(vghtpe, key, sample_study) -> None:
    ct = min(sample_study.rglob("CT_P_*.dcm"))
    result = Deidentifier(vghtpe, key).deidentify(read_object(ct.read_bytes()))
    assert result.applied["(0010,0010)"] == "case_number"
    assert result.applied["(0010,0020)"] == "hash"
    assert result.applied["(0008,0080)"] == "remove"
    assert result.applied["private"] == "remove"
    assert "keep" not in result.applied.values()
    assert all(k == "private" or (len(k) == 11 and not k.endswith(",0000)")) for k in result.applied)


def test_originals_are_read_before_the_rules_and_hidden(vghtpe, key, sample_study, patient) -> None:
    ct = min(sample_study.rglob("CT_P_*.dcm"))
    result = Deidentifier(vghtpe, key).deidentify(read_object(ct.read_bytes()))
    assert result.originals["patient_id"] == patient.patient_id
    assert result.originals["patient_name"] == patient.dicom_name
    assert result.originals["accession_number"] == patient.accession_number
    assert result.originals["study_uid"] == patient.study_instance_uid
    assert result.pseudonyms["patient_name"] and result.pseudonyms["patient_name"] != patient.name
    for shown in (repr(result), str(result.originals), json.dumps({"o": result.originals}, default=str)):
        assert patient.patient_id not in shown and patient.study_instance_uid not in shown
    with pytest.raises(TypeError):
        json.dumps(result.originals)


def test_collecting_the_review_changes_no_output_byte(vghtpe, key, sample_study) -> None:
    """peek decodes without converting the element in the dataset: raw values stay raw."""
    ct = min(sample_study.rglob("CT_P_*.dcm"))
    ds = read_object(ct.read_bytes())
    assert peek(ds, 0x00081030) and ds._dict[0x00081030].__class__.__name__ == "RawDataElement"
    _, first = release(ct, vghtpe, key)
    _, second = release(ct, vghtpe, key)
    assert first == second
