"""SR content trees are cleaned item by item: PNAME, DATE/TIME/DATETIME, UIDREF, TEXT; measurements,
codes and coordinates untouched; an item that would be left without its value goes as a whole."""

from __future__ import annotations

import copy
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from support import phi_found, release

from deid.engine.uids import UidRemapper
from deid.errors import ObjectError
from deid.profile.loader import load_profile
from deid.synthetic.sr import HARMLESS_TEXT

CONTENT = "ContentSequence"


def items(ds: Dataset) -> list[Dataset]:
    """Every content item below the root, depth first."""
    found = []
    for item in ds.get(CONTENT, []):
        found.append(item)
        found += items(item)
    return found


def named(ds: Dataset, meaning: str) -> list[Dataset]:
    return [i for i in items(ds) if i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def kept_data(ds: Dataset) -> list[tuple]:
    """What must pass untouched: codes, numbers, coordinates, image references, in tree order."""
    out = []
    for item in items(ds):
        kind = item.ValueType
        if kind == "CODE":
            code = item.ConceptCodeSequence[0]
            out.append((kind, code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning))
        elif kind == "NUM":
            out.append((kind, str(item.MeasuredValueSequence[0].NumericValue)))
        elif kind in ("SCOORD", "SCOORD3D"):
            out.append((kind, item.GraphicType, tuple(float(v) for v in item.GraphicData)))
    return out


def profile_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text("name: site\nextends: vghtpe\n" + body)
    return path


def read(data: bytes) -> Dataset:
    return dcmread(BytesIO(data))


@pytest.fixture(scope="module")
def images(landmark_study) -> list[Dataset]:
    return landmark_study[0]


@pytest.fixture(scope="module")
def report(landmark_study) -> Dataset:
    return read(landmark_study[1]["comprehensive3d"])


@pytest.fixture(scope="module")
def remover(tmp_path_factory) -> object:
    """vghtpe with text_with_identity: remove_item (vghtpe itself replaces the identity values)."""
    folder = tmp_path_factory.mktemp("remover")
    return load_profile(profile_file(folder, "structured_content:\n  text_with_identity: remove_item\n"))


@pytest.fixture(scope="module")
def released(report, vghtpe, key) -> tuple[Dataset, bytes]:
    return release(report, vghtpe, key)


def test_observer_and_subject_names_follow_the_person_name_rule(report, released, patient) -> None:
    out, _ = released
    assert {str(i.PersonName) for i in named(report, "Person Observer Name")} == {
        patient.reading_physician
    }
    assert [str(i.PersonName) for i in named(out, "Person Observer Name")] == [
        "DEIDENTIFIED"
    ]  # PS3.15 D
    assert [str(i.PersonName) for i in named(out, "Subject Name")] == ["DEIDENTIFIED"]


def test_dates_are_generalised_and_times_kept(report, released, patient) -> None:
    out, _ = released
    assert [i.Date for i in named(out, "Subject Birth Date")] == [patient.birth_date[:4] + "0101"]
    assert {i.Date for i in named(out, "Study Date")} == {patient.study_date[:4] + "0101"}
    assert {i.Time for i in named(out, "Study Time")} == {
        i.Time for i in named(report, "Study Time")
    }
    before = named(report, "Imaging Start DateTime")[0].DateTime
    after = {i.DateTime for i in named(out, "Imaging Start DateTime")}
    assert after == {before[:4] + "0101" + before[8:]}


def test_uidref_items_are_remapped_like_every_uid(report, released, images, key) -> None:
    out, _ = released
    remap = UidRemapper(key, None).remap
    before = [i.UID for i in items(report) if i.ValueType == "UIDREF"]
    after = [i.UID for i in items(out) if i.ValueType == "UIDREF"]
    assert len(after) == len(before) and not set(after) & set(before)
    frame = named(out, "Frame of Reference UID")[0].UID
    assert frame == remap(images[0].FrameOfReferenceUID)
    for item in named(report, "Tracking Unique Identifier"):
        assert remap(item.UID) in after


def test_text_naming_the_patient_or_institution_goes_and_the_rest_stays(
    report, released, patient
) -> None:
    out, data = released
    texts = [str(i.TextValue) for i in items(out) if i.ValueType == "TEXT"]
    assert HARMLESS_TEXT in texts
    assert any(t.startswith("LM01 ") for t in texts)  # tracking identifiers: harmless TEXT kept
    for value in (patient.patient_id, patient.institution, patient.display_name):
        assert not [t for t in texts if value in t]
    # vghtpe: text_with_identity: replace (an item left whole, its identity values replaced)
    for meaning in ("Subject ID", "Person Observer's Organization Name"):
        assert all(str(i.TextValue) == "[removed]" for i in named(out, meaning))
    assert len([t for t in texts if "[removed]" in t]) == 3
    assert phi_found(data, patient) == []


def test_measurements_codes_and_coordinates_are_untouched(report, released) -> None:
    out, _ = released
    assert kept_data(out) == kept_data(report)


def test_a_rule_that_removes_a_value_removes_its_item(tmp_path, report, key) -> None:
    site = load_profile(profile_file(tmp_path, "rules:\n  PersonName: remove\n  Date: empty\n"))
    out, _ = release(report, site, key)
    assert [i for i in items(out) if i.ValueType in ("PNAME", "DATE")] == []
    assert named(out, "Study Time")  # the other items of the same parents stay
    assert kept_data(out) == kept_data(report)


def test_a_profile_can_quarantine_instead(tmp_path, report, key) -> None:
    site = load_profile(
        profile_file(
            tmp_path,
            "structured_content:\n  value_removed: quarantine\nrules:\n  PersonName: remove\n",
        )
    )
    with pytest.raises(ObjectError) as caught:
        release(report, site, key)
    assert caught.value.code == "content-item-value-removed"
    assert caught.value.path.endswith("(0040,A123)") and "[" in caught.value.path


def test_text_with_identity_can_quarantine(tmp_path, report, key, patient) -> None:
    site = load_profile(
        profile_file(tmp_path, "structured_content:\n  text_with_identity: quarantine\n")
    )
    with pytest.raises(ObjectError) as caught:
        release(report, site, key)
    assert caught.value.code == "text-contains-identity"
    assert caught.value.path.endswith("(0040,A160)")
    for value in patient.phi_values():
        assert value not in caught.value.message


def test_without_clean_structured_content_no_text_stays(report, basic, key) -> None:
    out, _ = release(report, basic, key)
    assert [i for i in items(out) if i.ValueType == "TEXT"] == []
    assert {str(i.PersonName) for i in items(out) if i.ValueType == "PNAME"} == {"DEIDENTIFIED"}
    assert {i.Date for i in items(out) if i.ValueType == "DATE"} == {"19000101"}  # PS3.15 D
    assert kept_data(out) == kept_data(report)


def test_an_item_with_measurements_beneath_is_not_removed_but_quarantined(
    report, remover, key
) -> None:
    ds = copy.deepcopy(report)
    group = named(ds, "Measurement Group")[0]
    text = named(group, "Tracking Identifier")[0]
    text.TextValue = f"landmark of {ds.PatientID}"
    text.ContentSequence = Sequence([copy.deepcopy(named(group, "Image Region")[0])])
    with pytest.raises(ObjectError) as caught:
        release(ds, remover, key)
    assert caught.value.code == "content-item-not-removable"
    assert "SCOORD" in caught.value.message


def _by_reference(ds: Dataset, target: tuple[int, ...]) -> Dataset:
    """A Comprehensive SR item that refers to the content item ``target`` by reference."""
    item = Dataset()
    item.RelationshipType = "INFERRED FROM"
    item.ReferencedContentItemIdentifier = list(target)
    return item


def test_by_reference_relationships_are_renumbered(landmark_study, remover, key) -> None:
    ds = read(landmark_study[1]["comprehensive"])
    root = ds.ContentSequence
    meanings = [i.ConceptNameCodeSequence[0].CodeMeaning for i in root]
    harmless = meanings.index("Comment")  # the harmless comment, after the items that will go
    assert meanings.index("Subject ID") < harmless  # a TEXT with the patient ID
    assert str(root[harmless].TextValue) == HARMLESS_TEXT
    target = (1, harmless + 1)
    measurements = named(ds, "Imaging Measurements")[0]
    measurements.ContentSequence.append(_by_reference(ds, target))
    out, _ = release(ds, remover, key)
    reference = named_reference(out)
    assert len(reference) == 2 and reference[1] < target[1]  # items before it went: renumbered
    assert str(out.ContentSequence[reference[1] - 1].TextValue) == HARMLESS_TEXT


def named_reference(ds: Dataset) -> tuple[int, ...]:
    found = [
        tuple(int(v) for v in i.ReferencedContentItemIdentifier)
        for i in items(ds)
        if "ReferencedContentItemIdentifier" in i
    ]
    assert len(found) == 1
    return found[0]


def test_a_reference_to_a_removed_item_quarantines(landmark_study, remover, key) -> None:
    ds = read(landmark_study[1]["comprehensive"])
    meanings = [i.ConceptNameCodeSequence[0].CodeMeaning for i in ds.ContentSequence]
    target = (1, meanings.index("Subject ID") + 1)
    named(ds, "Imaging Measurements")[0].ContentSequence.append(_by_reference(ds, target))
    with pytest.raises(ObjectError) as caught:
        release(ds, remover, key)
    assert caught.value.code == "content-reference-removed"


def test_text_naming_another_id_of_the_patient_is_replaced(report, vghtpe, key, patient) -> None:
    """IDs of Other Patient IDs Sequence (a hospital MRN) count as the object's identity too."""
    ds = copy.deepcopy(report)
    assert ds.OtherPatientIDsSequence[0].PatientID == patient.other_patient_id
    comment = next(i for i in named(ds, "Comment") if str(i.TextValue) == HARMLESS_TEXT)
    comment.TextValue = f"See chart {patient.other_patient_id}."
    out, _ = release(ds, vghtpe, key)
    assert "See chart [removed]." in [str(i.TextValue) for i in named(out, "Comment")]
