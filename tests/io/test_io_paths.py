"""Output paths are built from de-identified values only, and stay inside the output folder."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from support import phi_found, to_bytes

from deid.io.paths import output_path
from deid.pipeline import Pipeline
from deid.outcome import Written
from deid.synthetic import four_phase_ct, rtss


def test_layout_is_patient_study_series_instance(tmp_path: Path) -> None:
    path = output_path(tmp_path, "abc", "2.25.1", "2.25.2", "2.25.3")
    assert path == tmp_path / "abc" / "2.25.1" / "2.25.2" / "2.25.3.dcm"


@pytest.mark.parametrize("value", ["..", ".", "../../etc", "a/b", "", "  ", "x\\y", "CHEN^MEI LING"])
def test_a_component_never_leaves_the_folder_or_nests(tmp_path: Path, value: str) -> None:
    path = output_path(tmp_path, value, value, value, value)
    assert path.resolve().is_relative_to(tmp_path.resolve())
    assert len(path.relative_to(tmp_path).parts) == 4
    assert all(part not in ("", ".", "..") for part in path.relative_to(tmp_path).parts)


def test_outputs_are_named_by_their_new_values_only(tmp_path: Path, vghtpe, key, patient) -> None:
    phases = four_phase_ct(patient, slices=2, size=16)
    sources = [*phases["N"], rtss(patient, phases["P"])]
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q")
    for source in sources:
        outcome = pipeline.process_bytes(to_bytes(source))
        assert isinstance(outcome, Written)
        relative = Path(outcome.released.output)
        ds = pydicom.dcmread(tmp_path / "out" / relative, stop_before_pixels=True)
        assert relative.parts == (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID + ".dcm")
        assert (outcome.released.patient_id, outcome.released.sop_uid) == (ds.PatientID, ds.SOPInstanceUID)
        assert phi_found(str(relative), patient) == []
        assert source.SOPInstanceUID not in str(relative) and source.SeriesInstanceUID not in str(relative)
