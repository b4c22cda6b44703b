"""Synthetic patients: deterministic, distinct, plausible."""

from __future__ import annotations

import dataclasses

import pytest

from deid.synthetic import SyntheticPatient, make_patient


def test_index_zero_is_the_documented_patient() -> None:
    p = make_patient(0)
    assert (p.name, p.patient_id, p.ideographic_name) == ("CHEN^MEI-LING", "A123456789", "陳^美玲")
    assert p.dicom_name == "CHEN^MEI-LING=陳^美玲"
    assert p.display_name == "CHEN MEI-LING"


def test_same_index_same_patient() -> None:
    assert make_patient(7) == make_patient(7)


def test_patients_are_distinct() -> None:
    patients = [make_patient(i) for i in range(200)]
    for field in ("name", "patient_id", "accession_number", "study_instance_uid"):
        assert len({getattr(p, field) for p in patients}) == 200, field
    assert {p.sex for p in patients} == {"F", "M"}
    assert any(not p.ideographic_name for p in patients)


def test_national_ids_have_valid_check_digits() -> None:
    letters = "ABCDEFGHJKLMNPQRSTUVXYWZIO"
    for i in range(60):
        pid = make_patient(i).patient_id
        code = letters.index(pid[0]) + 10
        digits = [code // 10, code % 10, *map(int, pid[1:])]
        weights = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
        assert sum(d * w for d, w in zip(digits, weights)) % 10 == 0, pid


def test_age_matches_birth_and_study_dates() -> None:
    p = make_patient(3)
    years = int(p.study_date[:4]) - int(p.birth_date[:4])
    years -= p.study_date[4:] < p.birth_date[4:]
    assert p.age == f"{years:03d}Y"


def test_phi_values_are_long_enough_for_substring_search() -> None:
    values = make_patient(1).phi_values()
    assert len(values) == len(set(values))
    assert all(len(v) >= 6 for v in values), [v for v in values if len(v) < 6]
    assert "SMITH^JOHN" in values and make_patient(1).study_instance_uid in values


def test_overridden_names_flow_into_free_text() -> None:
    p = make_patient(0, name="DOE^JANE")
    assert p.dicom_name == "DOE^JANE" and "DOE JANE" in p.history
    assert "MEI-LING" not in " ".join(p.phi_values())


def test_overrides_replace_fields_and_reject_unknown_ones() -> None:
    p = make_patient(0, patient_id="Z999999999")
    assert p.patient_id == "Z999999999" and "Z999999999" in p.phi_values()
    with pytest.raises(TypeError, match="nickname"):
        make_patient(0, nickname="x")
    with pytest.raises(TypeError, match="index"):
        make_patient(0, index="1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "X"  # type: ignore[misc]
    assert isinstance(p, SyntheticPatient)
