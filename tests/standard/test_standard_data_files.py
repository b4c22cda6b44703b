"""The packaged data files are the shared copies, and carry the NEMA acknowledgement."""

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "deid" / "standard" / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ps3.15"  # shared/ beside the repo
COPIES = (
    "e1_1_confidentiality_profile_2026d.json",
    "e1_1a_action_codes_2026d.json",
    "cid7050_deidentification_method_2026d.json",
)


def test_readme_acknowledgement():
    text = (DATA / "README.md").read_text(encoding="utf-8")
    assert "DICOM PS3.15 2026d, \u00a9 NEMA" in text
    assert "DICOM PS3.16 2026d, \u00a9 NEMA" in text


@pytest.mark.parametrize("name", COPIES)
def test_copies_are_unchanged(name):
    if not (SHARED / name).exists() and os.environ.get("CI") != "true":
        pytest.skip("shared source data not available")
    assert (DATA / name).read_bytes() == (SHARED / name).read_bytes()
