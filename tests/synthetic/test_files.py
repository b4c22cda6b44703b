"""Written sample studies: deterministic bytes, planted PHI, and clean under the peers."""

from __future__ import annotations

import sys
from pathlib import Path

import pydicom
import pytest

from deid.synthetic import (
    ct_slice,
    make_patient,
    study_folder_name,
    write_dataset,
    write_datasets,
    write_sample_study,
)
from deid.synthetic.ct import four_phase_ct

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peers import dciodvfy_errors, dciodvfy_warnings, dcmdump_ok


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_sample_study(tmp_path_factory.mktemp("sample"))


def test_layout_carries_phi_in_paths(sample: list[Path]) -> None:
    p = make_patient(0)
    assert len(sample) == 4 * 8 + 1
    assert {path.parent.name for path in sample} == {study_folder_name(p)}
    assert study_folder_name(p) == "CHEN^MEI-LING_A123456789"
    assert sample[0].name == "CT_N_001.dcm" and sample[-1].name == "RTSS_P.dcm"


def test_same_index_gives_identical_bytes(sample: list[Path], tmp_path: Path) -> None:
    again = write_sample_study(tmp_path)
    assert [path.name for path in again] == [path.name for path in sample]
    for first, second in zip(sample, again):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_other_patients_differ(tmp_path: Path) -> None:
    paths = write_sample_study(tmp_path, make_patient(1), slices=2, size=16)
    ds = pydicom.dcmread(paths[-1])
    assert ds.PatientName == "SMITH^JOHN" and paths[0].parent.name.startswith("SMITH^JOHN_")


def test_every_phi_value_is_in_the_files(sample: list[Path]) -> None:
    p = make_patient(0)
    blobs = [path.read_bytes() for path in sample]
    everything = b"".join(blobs)
    missing = [v for v in p.phi_values() if v.encode("utf-8") not in everything]
    assert not missing
    for value in (p.name, p.patient_id, p.accession_number, p.birth_date, p.study_instance_uid):
        assert all(value.encode() in blob for blob in blobs), value
    for value in p.date_values():
        assert value.encode() in everything


def test_written_rtss_references_resolve(sample: list[Path]) -> None:
    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in sample]
    ct_uids = {ds.SOPInstanceUID for ds in headers if ds.Modality == "CT"}
    structure_set = headers[-1]
    frame = structure_set.ReferencedFrameOfReferenceSequence[0]
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    referenced = {i.ReferencedSOPInstanceUID for i in series.ContourImageSequence}
    for contour in structure_set.ROIContourSequence[0].ContourSequence:
        referenced |= {i.ReferencedSOPInstanceUID for i in contour.ContourImageSequence}
    assert referenced and referenced <= ct_uids
    assert len(ct_uids) == 32


def test_private_sequence_is_explicit_sq(sample: list[Path]) -> None:
    ds = pydicom.dcmread(sample[0], stop_before_pixels=True)
    block = ds.private_block(0x0011, "VGH PACS INFO 1.0")
    assert block[0x10].VR == "SQ"
    assert block[0x10].value[0].PatientID == make_patient(0).patient_id


def test_benchmark_slice_is_clean(tmp_path: Path) -> None:
    p = make_patient(0)
    path = write_dataset(ct_slice(p, series_uid=p.series_uid("P"), index=0), tmp_path / "b.dcm")
    assert dciodvfy_errors(path) == [] and dcmdump_ok(path)


def test_default_names_carry_the_patient_id(tmp_path: Path) -> None:
    images = four_phase_ct(make_patient(2), slices=2, size=8)["A"]
    paths = write_datasets(images, tmp_path)
    assert [path.name for path in paths] == [
        f"{images[0].PatientID}_CT_003_0001.dcm",
        f"{images[0].PatientID}_CT_003_0002.dcm",
    ]
    with pytest.raises(ValueError, match="distinct"):
        write_datasets(images, tmp_path, ["same.dcm", "same.dcm"])


def test_dcmdump_reads_every_file(sample: list[Path]) -> None:
    assert [path.name for path in sample if not dcmdump_ok(path)] == []


def test_dciodvfy_finds_no_errors(sample: list[Path]) -> None:
    checked = [path for path in sample if path.name.endswith("_004.dcm")] + [sample[-1]]
    assert len(checked) == 5
    for path in checked:
        assert dciodvfy_errors(path) == [], path.name


def test_dciodvfy_warnings_are_few(sample: list[Path]) -> None:
    warnings = dciodvfy_warnings(sample[-1])
    assert len(warnings) < 20, warnings
