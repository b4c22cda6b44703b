"""A user's input holds files that cannot be released: they go to the quarantine with a reason,
the rest is released, and the run ends with exit code 3."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pydicom
import pytest
from support import SIZE, SLICES, deid, phi_found, run_args, tree

from deid.engine.uids import UidRemapper
from deid.keys import load_key_file
from deid.synthetic import make_patient, oddities, write_sample_study

BAD = {
    "not_dicom.dcm": ("not-dicom", "read"),
    "truncated.dcm": ("unreadable", "read"),
    "unknown_transfer_syntax.dcm": ("unknown-transfer-syntax", "read"),
    "sc_burned_in_absent.dcm": ("burned-in-annotation-risk", "check"),
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, patient, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("quarantine")
    incoming = root / "incoming"
    good = write_sample_study(incoming, patient, slices=SLICES, size=SIZE)
    odd = incoming / "odd"
    bad = [oddities.not_dicom(odd), oddities.truncated_dicom(odd, patient),
           oddities.unknown_transfer_syntax(odd, patient), oddities.secondary_capture(odd, patient, None)]
    good.append(oddities.secondary_capture(odd, make_patient(3), "NO"))  # says NO: may be released
    result = deid(*run_args(incoming, root / "out", key_file))
    return {"root": root, "good": good, "bad": bad, "result": result, "out": root / "out",
            "quarantine": root / "out-quarantine"}


def _entries(quarantine: Path) -> dict[str, tuple[dict, bytes]]:
    """Quarantine entries by the name of the original they hold."""
    return {entry.name: (json.loads((entry / "reason.json").read_text()), (entry / "original.dcm").read_bytes())
            for entry in quarantine.iterdir()}


def test_exit_code_3_and_a_summary_that_names_the_reasons(scene) -> None:
    result = scene["result"]
    assert result.returncode == 3, result.stderr
    assert f"{len(scene['good'])} written" in result.stdout and f"{len(BAD)} quarantined" in result.stdout
    for code, _ in BAD.values():
        assert f"{code} 1" in result.stdout
    assert str(scene["quarantine"]) in result.stdout


def test_each_bad_file_is_in_quarantine_with_a_reason(scene) -> None:
    entries = _entries(scene["quarantine"])
    assert len(entries) == len(BAD)
    originals = {data: reason for reason, data in entries.values()}
    for path in scene["bad"]:
        reason = originals[path.read_bytes()]  # the original is kept, unchanged, for review
        code, stage = BAD[path.name]
        assert set(reason) >= {"code", "stage", "path", "message"}
        assert (reason["code"], reason["stage"]) == (code, stage)
        assert isinstance(reason["path"], str) and reason["message"]


def test_reasons_hold_no_identity(scene, patient) -> None:
    for entry in scene["quarantine"].iterdir():
        text = (entry / "reason.json").read_text()
        assert phi_found(text, patient) == [], entry.name
        assert str(scene["root"] / "incoming") not in text


def test_quarantine_is_private(scene) -> None:
    quarantine = scene["quarantine"]
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o700
    for path in quarantine.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path.name, oct(mode))


def test_the_rest_is_written_and_nothing_of_the_bad_files(scene, key_file: Path, patient) -> None:
    uids = UidRemapper(load_key_file(key_file))
    expected = {uids.remap(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in scene["good"]}
    written = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in scene["out"].rglob("*.dcm")}
    assert written == expected
    files = tree(scene["out"])
    assert len(files) == len(expected)
    for relative, data in files.items():
        assert phi_found(relative, patient) == [] and phi_found(data, patient) == [], relative
        assert data not in {p.read_bytes() for p in scene["bad"]}


def test_the_logs_name_codes_not_values(scene, patient) -> None:
    result = scene["result"]
    warnings = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert sorted(w["code"] for w in warnings if w["event"] == "quarantined") == sorted(c for c, _ in BAD.values())
    assert phi_found(result.stdout + result.stderr, patient) == []
