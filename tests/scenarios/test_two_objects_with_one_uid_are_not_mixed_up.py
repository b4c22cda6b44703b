"""A source holds two different objects under one SOP Instance UID (a modality re-using UIDs, or
an edited copy): the first is released, the other goes to quarantine instead of silently
overwriting it; the same object twice is just released once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
from support import SIZE, deid, run_args

from deid.synthetic import four_phase_ct, write_dataset


def test_a_second_object_with_the_same_uid_is_quarantined(tmp_path: Path, patient, key_file: Path) -> None:
    image = four_phase_ct(patient, slices=1, size=SIZE)["P"][0]
    incoming = tmp_path / "incoming"
    write_dataset(image, incoming / "a" / "first.dcm")
    shutil.copy(incoming / "a" / "first.dcm", incoming / "a" / "same_again.dcm")
    image.SeriesDescription = "edited copy"
    write_dataset(image, incoming / "b" / "edited.dcm")

    result = deid(*run_args(incoming, tmp_path / "out", key_file))

    assert result.returncode == 3, result.stderr
    released = [p for p in (tmp_path / "out").rglob("*.dcm")]
    assert len(released) == 1
    assert str(pydicom.dcmread(released[0]).SeriesDescription) != "edited copy"  # the first in order
    reasons = [json.loads(p.read_text()) for p in (tmp_path / "out-quarantine").rglob("reason.json")]
    assert [r["code"] for r in reasons] == ["duplicate-instance"]
    assert reasons[0]["path"] == "(0008,0018)"
