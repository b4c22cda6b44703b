"""Identity values: keyed hashes that fit their VR, the same in the CT and its RTSS; case numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import release, to_bytes

from deid.engine.deidentifier import Deidentifier
from deid.engine.identity import Identity, load_lookup
from deid.engine.vr import MAX_CHARS
from deid.errors import ObjectError, UsageError
from deid.pipeline import Pipeline
from deid.outcome import Quarantined
from deid.profile.loader import load_profile
from deid.synthetic import four_phase_ct, make_patient, rtss

HEX = re.compile(r"^[0-9a-f]+$")


@pytest.fixture(scope="module")
def study(patient) -> tuple[list, object]:
    phases = four_phase_ct(patient, slices=2, size=16)
    return [images[0] for images in phases.values()], rtss(patient, phases["P"])


def test_patient_id_and_accession_are_the_same_in_every_phase_and_the_rtss(vghtpe, key, patient, study) -> None:
    images, structure = study
    outputs = [release(ds, vghtpe, key)[0] for ds in (*images, structure)]
    patient_ids = {ds.PatientID for ds in outputs}
    accessions = {ds.AccessionNumber for ds in outputs}
    assert len(patient_ids) == 1 and len(accessions) == 1
    (patient_id,), (accession,) = patient_ids, accessions
    assert len(patient_id) == 32 and HEX.match(patient_id)  # Table 5-1: hash; Table 5-2: the same value
    assert len(accession) == 16 and HEX.match(accession)  # SH holds 16 characters
    assert patient_id != patient.patient_id and accession != patient.accession_number
    assert outputs[-1].Modality == "RTSTRUCT"


def test_hash_depends_on_the_key(vghtpe, key, study) -> None:
    from deid.keys import SecretKey

    first, _ = release(study[0][0], vghtpe, key)
    other, _ = release(study[0][0], vghtpe, SecretKey(b"\x42" * 32))
    assert first.PatientID != other.PatientID and first.AccessionNumber != other.AccessionNumber


def test_hash_lengths_never_pass_the_vr_limit(tmp_path: Path, key, study) -> None:
    (tmp_path / "hashes.yaml").write_text(
        "name: hashes\nextends: vghtpe\nrules:\n"
        "  AccessionNumber: hash\n"                    # SH: the default 32 is cut to 16
        "  StationName: hash\n"                        # SH
        "  InstitutionName: hash\n"                    # LO: default 32
        "  PatientID: {action: hash, length: 64}\n"    # LO: the whole limit
        "  OperatorsName: {action: hash, length: 64}\n"  # PN
        "  StudyID: {action: hash, length: 8}\n"
    )
    profile = load_profile(tmp_path / "hashes.yaml")
    ds, _ = release(study[0][0], profile, key)
    expected = {"AccessionNumber": 16, "StationName": 16, "InstitutionName": 32, "PatientID": 64,
                "OperatorsName": 64, "StudyID": 8}
    for keyword, length in expected.items():
        elem = ds[keyword]
        assert len(str(elem.value)) == length, keyword
        assert len(str(elem.value)) <= MAX_CHARS[elem.VR]


def test_identity_hash_is_cut_to_the_length(key) -> None:
    identity = Identity(key, lookup=None, case_digits=10)
    for length in (1, 16, 32, 64):
        assert len(identity.hashed("(0010,0020)", "A123456789", length)) == length
    assert identity.hashed("(0010,0020)", "", 16) == ""
    assert identity.hashed("a", "x", 16) != identity.hashed("b", "x", 16)  # domains keep uses apart


def test_case_number_without_lookup_is_derived_and_stable(vghtpe, key, patient, study) -> None:
    images, structure = study
    names = {str(release(ds, vghtpe, key)[0].PatientName) for ds in (images[0], images[3], structure)}
    assert len(names) == 1
    (name,) = names
    assert re.fullmatch(r"\d{10}", name)
    other = str(release(four_phase_ct(make_patient(1), slices=1, size=16)["P"][0], vghtpe, key)[0].PatientName)
    assert other != name


def test_case_number_from_the_lookup(vghtpe, key, patient, study) -> None:
    images, structure = study
    lookup = {patient.patient_id: "622"}
    for ds in (images[0], structure):
        out, data = release(ds, vghtpe, key, lookup=lookup)
        assert out.PatientName == "622"
        assert patient.name.encode() not in data


def test_lookup_csv_is_read(tmp_path: Path, patient) -> None:
    path = tmp_path / "lookup.csv"
    path.write_text(f"Patient ID,Case Number\n{patient.patient_id},622\nB234567890,623\n", encoding="utf-8")
    assert load_lookup(path) == {patient.patient_id: "622", "B234567890": "623"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("id,name\nA1,622\n", "columns patient_id and case_number"),
        ("patient_id,case_number\nA1,\n", "line 2"),
        ("patient_id,case_number\nA1,622\nA1,623\n", "two case numbers"),
        ("patient_id,case_number\nA1,62^2\n", "plain characters"),
    ],
)
def test_a_bad_lookup_csv_is_refused(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "lookup.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=words):
        load_lookup(path)


def test_a_patient_missing_from_the_lookup_is_quarantined(tmp_path: Path, vghtpe, key, patient, study) -> None:
    lookup = {"B234567890": "623"}
    with pytest.raises(ObjectError) as caught:
        from deid.io.reader import read_object

        Deidentifier(vghtpe, key, lookup=lookup).deidentify(read_object(to_bytes(study[0][0])))
    assert caught.value.code == "patient-not-in-lookup"
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q", lookup=lookup)
    outcome = pipeline.process_bytes(to_bytes(study[1]))
    assert isinstance(outcome, Quarantined)
    assert outcome.code == "patient-not-in-lookup" and outcome.path == "(0010,0020)"
    assert patient.patient_id not in str(outcome.reason())
    assert not (tmp_path / "out").exists()
