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


def test_with_two_workers_the_first_in_input_order_is_released(tmp_path: Path, patient,
                                                               key_file: Path) -> None:
    """Which of two contents under one UID goes out is decided by the input's order, as with one
    worker, never by which worker finished first: the pair sits where two workers each take one
    (the 4th and 5th of 8 files: the first worker's last, the second worker's first)."""
    slices = four_phase_ct(patient, slices=7, size=SIZE)["P"]
    incoming = tmp_path / "incoming"
    for index in range(7):
        write_dataset(slices[index], incoming / f"f{index + (index > 3)}.dcm")
    twin = slices[3]
    twin.SeriesDescription = "edited copy"
    write_dataset(twin, incoming / "f4.dcm")  # after f3, the original (sorted by name)

    outputs = {}
    for workers in ("1", "2", "2", "2"):
        out = tmp_path / f"out-{len(outputs)}"
        result = deid(*run_args(incoming, out, key_file, "--workers", workers))
        assert result.returncode == 3, result.stderr
        reasons = [json.loads(p.read_text()) for p in (Path(f"{out}-quarantine")).rglob("reason.json")]
        assert [(r["code"], r["source"]) for r in reasons] == [("duplicate-instance", "f4.dcm")]
        released = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.dcm")}
        assert len(released) == 7
        assert "edited copy" not in {str(pydicom.dcmread(out / p).SeriesDescription) for p in released}
        outputs[len(outputs)] = released
    assert all(tree == outputs[0] for tree in outputs.values())  # the same bytes every time
