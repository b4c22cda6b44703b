"""The peer-tool helpers themselves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import peers


def test_normalised_lines_drop_values_and_uids() -> None:
    line = (
        "Error - Value invalid for this VR - (0x0008,0x0050) SH Accession Number  "
        "SH [1] = <XXXXXXXXXXXXXXXXXXXX> - Length invalid for this VR = 20, expected <= 16"
    )
    assert peers.normalise_dciodvfy_line(line) == (
        "Error - Value invalid for this VR - (0x0008,0x0050) SH Accession Number "
        "SH [1] = <> - Length invalid for this VR = N, expected <= 16"
    )
    missing = "Error - Missing attribute Type 2 Required Element=<StudyID> Module=<GeneralStudy>"
    assert peers.normalise_dciodvfy_line(missing) == missing
    assert peers.normalise_dciodvfy_line("UID 2.25.1234.5 bad") == "UID <uid> bad"


def test_missing_tool_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        peers.require_tool("no-such-tool-deid")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        peers.require_tool("no-such-tool-deid")
