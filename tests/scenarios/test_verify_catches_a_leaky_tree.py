"""A data manager runs `deid verify` on an output tree: every planted leak is found with its file and
element path (never its value); a clean `deid run` output passes."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from support import deid, release, run_args

from deid.audit.verify import verify_tree
from deid.io.paths import output_path
from deid.synthetic import four_phase_ct, rtss, write_dataset

NOT_REMAPPED = "1.2.826.0.1.3680043.8.498.77"
MISSING_INSTANCE = "2.25.123456789"


def _place(out: Path, ds: Dataset) -> Path:
    path = output_path(out, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    return write_dataset(ds, path)


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory, patient, vghtpe, key) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A released four-phase CT + RTSS in which leaks were planted by hand: name -> (file, path, code)."""
    out = tmp_path_factory.mktemp("leaky") / "out"
    phases = four_phase_ct(patient, slices=2, size=16)
    originals = [*phases["N"], *phases["A"], *phases["P"], *phases["D"], rtss(patient, phases["P"])]
    datasets = [release(ds, vghtpe, key)[0] for ds in originals]
    ct, rt = datasets[:-1], datasets[-1]
    planted: dict[str, tuple[Dataset, str, str]] = {}

    ct[0].ReferencedImageSequence[0].PatientName = patient.name  # a name two levels down
    planted["name in a sequence"] = (ct[0], "(0008,1140)[0].(0010,0010)", "patient-name-not-case-number")
    rt.RTROIObservationsSequence[0].ROIInterpreter = patient.reading_physician
    planted["physician in a sequence"] = (rt, "(3006,0080)[0].(3006,00A6)", "identity-attribute")
    ct[1].FrameOfReferenceUID = NOT_REMAPPED
    planted["UID not remapped"] = (ct[1], "(0020,0052)", "uid-not-remapped")
    block = ct[2].ReferencedImageSequence[0].private_block(0x0029, "LEAKY PACS", create=True)
    block.add_new(0x01, "LO", patient.patient_id)
    planted["private creator"] = (ct[2], "(0008,1140)[0].(0029,0010)", "private-tag")
    planted["private value"] = (ct[2], "(0008,1140)[0].(0029,1001)", "private-tag")
    ct[3].add(DataElement(0x00180015, "CS", "abdomen!", validation_mode=config.IGNORE))
    planted["bad VR value"] = (ct[3], "(0018,0015)", "bad-vr-value")
    del ct[4].DeidentificationMethod
    planted["missing method"] = (ct[4], "(0012,0063)", "missing-method")
    ct[5].PatientIdentityRemoved = "NO"
    planted["identity not removed"] = (ct[5], "(0012,0062)", "missing-method")
    ct[6].AccessionNumber = patient.accession_number
    planted["accession"] = (ct[6], "(0008,0050)", "not-pseudonymised")
    ct[6].PatientBirthDate = patient.birth_date
    planted["birth date"] = (ct[6], "(0010,0030)", "date-not-generalised")
    ct[7].InstitutionName = patient.institution
    planted["institution"] = (ct[7], "(0008,0080)", "identity-attribute")
    contour_images = rt.ROIContourSequence[0].ContourSequence[0].ContourImageSequence
    contour_images[0].ReferencedSOPInstanceUID = MISSING_INSTANCE
    planted["reference to a missing instance"] = (
        rt, "(3006,0039)[0].(3006,0040)[0].(3006,0016)[0].(0008,1155)", "dangling-reference")

    files = {id(ds): _place(out, ds) for ds in datasets}
    expected = {name: (str(files[id(ds)].relative_to(out)), path, code) for name, (ds, path, code) in planted.items()}
    return out, expected


def test_verify_finds_each_planted_leak_with_its_path(leaky, vghtpe) -> None:
    out, expected = leaky
    files, findings = verify_tree(out, vghtpe)
    assert files == 4 * 2 + 1
    found = {(f.file, f.path, f.code) for f in findings}
    for name, where in expected.items():
        assert where in found, name
    assert found == set(expected.values())  # and nothing else


def test_the_command_exits_non_zero_and_prints_paths_never_values(leaky, patient) -> None:
    out, expected = leaky
    result = deid("verify", out)
    assert result.returncode == 4, result.stderr
    printed = {tuple(line.split("\t")) for line in result.stdout.splitlines()}
    assert printed == set(expected.values())
    assert "12 findings" in result.stderr and "dangling-reference 1" in result.stderr
    for value in (patient.name, patient.reading_physician, patient.patient_id, patient.accession_number,
                  patient.birth_date, patient.institution, NOT_REMAPPED, MISSING_INSTANCE, "abdomen!"):
        assert value not in result.stdout + result.stderr


def test_a_file_that_is_not_dicom_is_a_finding(tmp_path: Path, vghtpe) -> None:
    (tmp_path / "notes.txt").write_text("CHEN^MEI-LING")
    _, findings = verify_tree(tmp_path, vghtpe)
    assert [(f.file, f.code) for f in findings] == [("notes.txt", "unreadable")]


def test_a_clean_run_output_passes(tmp_path: Path, sample_study: Path, key_file: Path) -> None:
    out = tmp_path / "out"
    assert deid(*run_args(sample_study, out, key_file)).returncode == 0
    result = deid("verify", out)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "" and "nothing found" in result.stderr
    assert pydicom.dcmread(next(out.rglob("*.dcm"))).PatientIdentityRemoved == "YES"


def test_verify_reads_headers_only(tmp_path: Path, vghtpe, key, patient) -> None:
    """A file cut inside its Pixel Data still verifies: reading stops before the pixels."""
    ds = release(four_phase_ct(patient, slices=1, size=64)["N"][0], vghtpe, key)[0]
    ds.ReferencedImageSequence = ds.SourceImageSequence = Sequence()  # no neighbour to point at
    path = _place(tmp_path, ds)
    path.write_bytes(path.read_bytes()[:-1000])
    assert verify_tree(tmp_path, vghtpe)[1] == []
