"""deid verify's pieces: original values found as whole words, date and UID checks, finding lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.audit.verify import CODES, Finding, Originals, Verifier, _generalised, verify_tree
from deid.io.paths import output_path
from deid.synthetic import four_phase_ct, write_dataset


def _originals(patient) -> Originals:
    return Originals.from_entries([{"original": {
        "patient_id": patient.patient_id, "patient_name": patient.dicom_name,
        "accession_number": patient.accession_number, "study_uid": patient.study_instance_uid,
        "series_uid": patient.series_uid("N"), "sop_uid": "2.25.42"}}])


def test_original_values_are_found_as_whole_words_in_any_spelling(patient) -> None:
    found = _originals(patient)
    for text in (f"Chart {patient.patient_id}", f"NHI-{patient.patient_id}", "contour for chen mei-ling",
                 "MEI-LING CHEN", "CHEN^MEI-LING", "陳美玲 tumour", f"acc {patient.accession_number}",
                 f"see {patient.study_instance_uid} prior"):
        assert found.in_text(text), text
    for text in ("CHENG", "MEI", "Liver tumour", patient.patient_id[:-1], "2.25.4"):
        assert not found.in_text(text), text
    assert found.uids == {patient.study_instance_uid, patient.series_uid("N"), "2.25.42"}


def test_dates_are_generalised_when_generalising_again_changes_nothing() -> None:
    assert _generalised("DA", "20170101") and _generalised("DT", "20170101083000.000+0800")
    assert not _generalised("DA", "20170415") and not _generalised("DT", "20170415083000")
    assert not _generalised("DA", "15/04/2017")


def test_a_finding_line_is_file_path_and_code() -> None:
    assert Finding("a/b.dcm", "(0008,1140)[0].(0010,0010)", "person-name").line() == (
        "a/b.dcm\t(0008,1140)[0].(0010,0010)\tperson-name")
    assert Finding("a/b.dcm", "", "unreadable").line() == "a/b.dcm\t-\tunreadable"
    assert set(CODES) >= {"private-tag", "uid-not-remapped", "bad-vr-value", "missing-method",
                          "dangling-reference", "original-value", "original-uid", "person-name"}


def test_a_uid_root_of_the_profile_counts_as_remapped(vghtpe) -> None:
    verifier = Verifier(vghtpe)
    assert verifier._remapped("2.25.1234") and verifier._remapped("1.2.840.10008.5.1.4.1.1.2")
    assert not verifier._remapped("1.2.826.0.1.3680043.8.498.1")


def test_an_untouched_original_object_fails_on_every_count(tmp_path: Path, patient, vghtpe) -> None:
    """A builder CT that was never de-identified: verify names the kinds of leak it holds."""
    ds = four_phase_ct(patient, slices=1, size=16)["N"][0]
    write_dataset(ds, output_path(tmp_path, "x", "y", "z", "w"))
    _, findings = verify_tree(tmp_path, vghtpe, originals=_originals(patient))
    codes = {f.code for f in findings}
    assert codes >= {"private-tag", "identity-attribute", "missing-method", "original-value",
                     "original-uid", "date-not-generalised", "file-meta-identity"}
    assert ("(0010,0010)", "original-value") in {(f.path, f.code) for f in findings}


def test_a_binary_value_of_the_wrong_length_breaks_its_vr(tmp_path: Path, patient, vghtpe, key) -> None:
    from support import release

    ds = release(four_phase_ct(patient, slices=1, size=16)["N"][0], vghtpe, key)[0]
    ds.ReferencedImageSequence = ds.SourceImageSequence = []
    path = write_dataset(ds, output_path(tmp_path, "p", "s", "e", "i"))
    data = path.read_bytes()
    element = b"\x28\x00\x00\x01US\x02\x00"  # Bits Allocated (0028,0100), US, length 2
    at = data.index(element)
    path.write_bytes(data[:at] + b"\x28\x00\x00\x01US\x03\x00\x10\x00\x00" + data[at + 10:])  # 3 bytes
    _, findings = verify_tree(tmp_path, vghtpe)
    assert [(f.path, f.code) for f in findings] == [("(0028,0100)", "bad-vr-value")]


def test_patient_name_is_judged_by_the_profiles_own_action(tmp_path: Path, patient, basic, key) -> None:
    """ps3.15-basic empties Patient's Name: empty passes, any value is a leak; a dummy action
    accepts exactly the dummy."""
    from support import release

    ds = release(four_phase_ct(patient, slices=1, size=16)["N"][0], basic, key)[0]
    path = write_dataset(ds, output_path(tmp_path, "p", "s", "e", "i"))
    assert verify_tree(tmp_path, basic)[1] == []
    ds.PatientName = "DEIDENTIFIED"
    write_dataset(ds, path)
    assert [(f.path, f.code) for f in verify_tree(tmp_path, basic)[1]] == [("(0010,0010)", "identity-attribute")]
    verifier, dummy = Verifier(basic), type("Decision", (), {"action": "dummy"})()
    assert verifier._check_values(0x00100010, "PN", ["DEIDENTIFIED"], dummy, top=True) == ""
    assert verifier._check_values(0x00100010, "PN", ["CHEN^MEI-LING"], dummy, top=True) == "identity-attribute"


def test_a_pseudonym_that_keeps_a_label_is_still_a_pseudonym() -> None:
    """lung-pet-ct-dx keeps the diagnosis group letter in Patient ID: 'A-' + the keyed hash."""
    from deid.engine.compiler import compile_rules
    from deid.profile.loader import load_profile

    lung = load_profile("lung-pet-ct-dx")
    verifier, hashed = Verifier(lung), compile_rules(lung, "1.2.840.10008.5.1.4.1.1.2").decide((), 0x00100020, "LO")
    assert (hashed.action, hashed.length) == ("hash", 16)
    assert verifier._check_values(0x00100020, "LO", ["A-3f9c0123456789"], hashed, top=True) == ""
    assert verifier._check_values(0x00100020, "LO", ["A-Lung_Dx-A0001"], hashed, top=True) == "not-pseudonymised"
    assert verifier._check_values(0x00100020, "LO", ["Lung_Dx-A0001"], hashed, top=True) == "not-pseudonymised"


def test_each_file_is_judged_by_the_profile_it_names(tmp_path: Path, key) -> None:
    """Without --profile, a Lung-PET-CT-Dx release passes: its files name their profile in (0012,0063)."""
    from support import release

    from deid.audit.verify import verify
    from deid.profile.loader import load_profile
    from deid.synthetic.fused import lung_patient

    lung = load_profile("lung-pet-ct-dx")
    for ds in four_phase_ct(lung_patient("E", 3), slices=2, size=16)["P"]:
        out = release(ds, lung, key)[0]
        write_dataset(out, output_path(tmp_path, out.PatientID, out.StudyInstanceUID, out.SeriesInstanceUID,
                                       out.SOPInstanceUID))
    result = verify(tmp_path, None)
    assert (result.files, result.findings, result.profiles) == (2, [], ["lung-pet-ct-dx"])
    assert verify(tmp_path, load_profile("vghtpe")).findings  # judged by the wrong profile


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory, patient) -> list:
    """CT, PET, RTSS, SEG and the three SR classes of one patient, as files or Part 10 bytes."""
    from support import to_bytes

    from deid.synthetic import write_sample_study
    from deid.synthetic.sr import landmark_sr

    folder = tmp_path_factory.mktemp("kinds")
    sources = write_sample_study(folder, patient, slices=2, size=16, seg=True, pet=True)
    images = four_phase_ct(patient, slices=2, size=16)["P"]
    return [*sources, *(to_bytes(landmark_sr(patient, images, sop_class=c))
                        for c in ("enhanced", "comprehensive", "comprehensive3d"))]


@pytest.mark.parametrize("profile_name", ["vghtpe", "ps3.15-basic"])
def test_every_object_kind_released_by_a_shipped_profile_verifies_clean(
        tmp_path: Path, key, every_kind: list, profile_name: str) -> None:
    """Each kind released as the pipeline does, by each shipped profile: nothing found."""
    from support import release

    from deid.audit.verify import verify
    from deid.profile.loader import load_profile

    profile = load_profile(profile_name)
    for source in every_kind:
        ds = release(source, profile, key)[0]
        write_dataset(ds, output_path(tmp_path, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                      ds.SOPInstanceUID))
    result = verify(tmp_path, None)
    assert result.profiles == [profile_name]
    assert result.files == len(every_kind) and result.findings == []


def test_released_annotation_files_are_text_searched_with_the_map(tmp_path: Path, patient, vghtpe, key) -> None:
    """A VOC annotation released beside its image passes; a name written into it later is found."""
    from deid.audit.verify import verify
    from deid.run import RunPaths, run
    from deid.synthetic.sidecars import write_voc

    source = tmp_path / "in"
    image = four_phase_ct(patient, slices=1, size=16)["P"][0]
    image.ReferencedImageSequence = image.SourceImageSequence = []  # no neighbour slice to point at
    write_dataset(image, source / "CT.dcm")
    write_voc(source, image, patient)
    paths = RunPaths(tmp_path / "out", tmp_path / "quarantine", tmp_path / "records")
    summary = run([source], paths, vghtpe, key)
    assert summary.written == 2
    originals = load_map(tmp_path / "records", key)
    clean = verify(paths.out, None, originals=originals)
    assert clean.files == 2 and clean.findings == []
    (annotation,) = (paths.out / "annotations").iterdir()
    annotation.write_text(annotation.read_text() + f"<!-- {patient.display_name} -->\n")
    found = verify(paths.out, None, originals=originals).findings
    assert [(f.file, f.code) for f in found] == [(f"annotations/{annotation.name}", "original-value")]
    assert found[0].path.startswith("line ")


def load_map(records: Path, key):
    from deid.audit.verify import load_originals

    return load_originals(records, key)


def test_the_lock_of_a_run_is_not_an_output_file(tmp_path: Path) -> None:
    from deid.audit.verify import output_files
    from deid.io.writer import OUTPUT_LOCK

    (tmp_path / OUTPUT_LOCK).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / OUTPUT_LOCK).write_bytes(b"")  # only the top one is the run's
    assert [name for _path, name in output_files(tmp_path)] == [f"sub/{OUTPUT_LOCK}"]
