"""A user releases a SEG whose descriptions name the patient (typed in by whoever drew the masks):
under both shipped profiles each kept description that does goes out with the name replaced, and
the outcome counts it (nothing is left to flag)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SIZE, SLICES, phi_found

from deid.pipeline import Pipeline
from deid.outcome import Written
from deid.synthetic import four_phase_ct, segmentation, write_dataset


@pytest.mark.parametrize(("profile_name", "flagged"), [
    ("vghtpe", ["ContentDescription", "SegmentDescription", "SeriesDescription"]),
    ("basic", ["ContentDescription", "SegmentDescription"]),  # basic removes Series Description
])
def test_descriptions_naming_the_patient_are_flagged(request, tmp_path: Path, patient, key,
                                                     profile_name: str, flagged: list[str]) -> None:
    images = four_phase_ct(patient, slices=SLICES, size=SIZE)["P"]
    source = write_dataset(segmentation(patient, images, names_patient_in_text=True),
                           tmp_path / "seg.dcm")
    profile = request.getfixturevalue(profile_name)
    outcome = Pipeline(profile, key, out=tmp_path / "out", quarantine=tmp_path / "q").process_file(source)
    assert isinstance(outcome, Written)
    assert sorted(outcome.released.text_replaced) == flagged and outcome.released.flagged_text == ()
    released = (tmp_path / "out" / outcome.released.output).read_bytes()
    assert phi_found(released, patient) == [] and b"[removed]" in released
    clean = write_dataset(segmentation(patient, images), tmp_path / "clean.dcm")
    clean_outcome = Pipeline(profile, key, out=tmp_path / "out2", quarantine=tmp_path / "q").process_file(clean)
    assert isinstance(clean_outcome, Written)
    assert clean_outcome.released.flagged_text == () and clean_outcome.released.text_replaced == {}
