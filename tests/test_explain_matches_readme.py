"""The README's explain tables are exactly what `deid explain ... --only-profile` prints."""

from __future__ import annotations

import re

import pytest
from support import REPO, deid

README = REPO / "README.md"
BLOCKS = [("vghtpe", "CTImageStorage"), ("vghtpe", "RTStructureSetStorage"),
          ("lung-pet-ct-dx", "SecondaryCaptureImageStorage")]


def _block(text: str, profile: str, sop_class: str) -> str:
    pattern = re.compile(
        rf"<!-- explain:{re.escape(profile)}:{re.escape(sop_class)} -->\s*\n```text\n(.*?)```\s*\n<!-- /explain -->",
        re.DOTALL,
    )
    found = pattern.findall(text)
    assert len(found) == 1, f"README.md needs one ```text block between <!-- explain:{profile}:{sop_class} --> " \
                            "and <!-- /explain --> (regenerate with: python tools/readme_explain.py)"
    return found[0]


@pytest.mark.parametrize(("profile", "sop_class"), BLOCKS)
def test_readme_explain_block_matches_the_tool(profile: str, sop_class: str) -> None:
    assert README.is_file(), "README.md is missing"
    documented = _block(README.read_text(encoding="utf-8"), profile, sop_class)
    result = deid("explain", "--profile", profile, "--sop-class", sop_class, "--only-profile")
    assert result.returncode == 0, result.stderr
    assert documented == result.stdout, "README.md is out of date: run python tools/readme_explain.py"


def test_explain_names_what_the_tables_say() -> None:
    result = deid("explain", "--profile", "vghtpe", "--sop-class", "CTImageStorage", "--only-profile")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Profile vghtpe (version 1, ps3.15-basic > vghtpe), CTImageStorage")
    referring = next(line for line in lines if "ReferringPhysicianName" in line)
    assert "empty" in referring and "remove -> empty: Type 2" in referring
    accession = next(line for line in lines if "AccessionNumber" in line)
    assert "hash (16)" in accession


def test_explain_refuses_an_unknown_sop_class() -> None:
    result = deid("explain", "--profile", "vghtpe", "--sop-class", "CTImageStorag")
    assert result.returncode == 2 and "unknown SOP class" in result.stderr
