"""Label-keeping pseudonyms: the released value is <label><separator><keyed value>, nothing else of
the original; the same in every object of the patient; a value without the label fails closed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import release

from deid.engine.identity import Identity
from deid.errors import ObjectError
from deid.profile.loader import load_profile
from deid.profile.model import Profile
from deid.synthetic import four_phase_ct, rtss
from deid.synthetic.fused import lung_patient


@pytest.fixture(scope="module")
def lung() -> Profile:
    return load_profile("lung-pet-ct-dx")


def _profile(tmp_path: Path, body: str) -> Profile:
    path = tmp_path / "site.yaml"
    path.write_text("name: site\nextends: lung-pet-ct-dx\n" + body)
    return load_profile(path)


@pytest.mark.parametrize("group", "ABEG")
def test_the_released_id_keeps_the_group_letter_and_nothing_else(lung: Profile, key, group: str) -> None:
    patient = lung_patient(group, 17)
    ds, encoded = release(four_phase_ct(patient, slices=1, size=16)["P"][0], lung, key)
    expected = Identity(key, lookup=None, case_digits=10).hashed("(0010,0020)", patient.patient_id, 14)
    assert ds.PatientID == f"{group}-{expected}" and len(ds.PatientID) == 16
    assert re.fullmatch(rf"{group}-[0-9a-f]{{14}}", ds.PatientID)
    assert patient.patient_id.encode() not in encoded and b"0017" not in ds.PatientID.encode()


def test_patients_of_one_group_get_different_ids(lung: Profile, key) -> None:
    ids = {release(four_phase_ct(lung_patient("E", n), slices=1, size=16)["N"][0], lung, key)[0].PatientID
           for n in range(1, 6)}
    assert len(ids) == 5 and all(value.startswith("E-") for value in ids)


def test_the_rtss_pseudonym_equals_the_images_hash(tmp_path: Path, key) -> None:
    profile = _profile(tmp_path, "sop_classes:\n  RTStructureSetStorage:\n    rules:\n"
                                 "      PatientID: {action: pseudonym, length: 16}\n")
    patient = lung_patient("G", 3)
    images = four_phase_ct(patient, slices=2, size=16)["P"]
    structure_set, _ = release(rtss(patient, images), profile, key)
    image, _ = release(images[0], profile, key)
    assert structure_set.PatientID == image.PatientID and image.PatientID.startswith("G-")


def test_an_id_without_the_label_is_quarantined_by_default(lung: Profile, key) -> None:
    patient = lung_patient("A", 1)
    image = four_phase_ct(patient, slices=1, size=16)["P"][0]
    image.PatientID = "Lung_Dx-X0001"
    with pytest.raises(ObjectError) as caught:
        release(image, lung, key)
    assert caught.value.code == "label-not-found" and caught.value.path == "(0010,0020)"
    assert "pseudonym.labels" in caught.value.message and "X0001" not in caught.value.message


def test_on_mismatch_hash_releases_a_plain_pseudonym(tmp_path: Path, key) -> None:
    profile = _profile(tmp_path, "pseudonym:\n  labels:\n    PatientID: {pattern: '^Lung_Dx-([ABEG])',"
                                 " on_mismatch: hash}\n")
    image = four_phase_ct(lung_patient("A", 1), slices=1, size=16)["P"][0]
    image.PatientID = "Lung_Dx-X0001"
    ds, _ = release(image, profile, key)
    assert re.fullmatch(r"[0-9a-f]{16}", ds.PatientID)


def test_a_label_that_leaves_no_room_for_the_pseudonym_is_refused(tmp_path: Path, key) -> None:
    profile = _profile(tmp_path, "pseudonym:\n  labels:\n    PatientID: {pattern: '^(.*)$'}\n")
    with pytest.raises(ObjectError) as caught:
        release(four_phase_ct(lung_patient("B", 1), slices=1, size=16)["P"][0], profile, key)
    assert caught.value.code == "label-too-long"


def test_a_label_goes_in_front_of_the_case_number(tmp_path: Path, key) -> None:
    profile = _profile(tmp_path, "pseudonym:\n  labels:\n    PatientName: {pattern: '^([A-Z])', separator: '_'}\n")
    patient = lung_patient("A", 9)
    ds, _ = release(four_phase_ct(patient, slices=1, size=16)["P"][0], profile, key)
    case = Identity(key, lookup=None, case_digits=10).case_number(patient.patient_id)
    assert str(ds.PatientName) == f"{patient.name[0]}_{case}"
