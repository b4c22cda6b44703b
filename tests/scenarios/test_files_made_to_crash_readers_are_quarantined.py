"""A user's input holds corrupt or hostile files: a VR DICOM does not define, sequences nested
hundreds of levels deep (made to exhaust a reader's stack).  Each goes to the quarantine with a
reason a person can act on, never ``internal-error``; the rest is released, nesting within the
limit included."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from support import SIZE, SLICES, deid, run_args

from deid.audit.reasons import REASONS
from deid.io.reader import MAX_NESTING
from deid.synthetic import make_patient, oddities, write_sample_study

#: file name -> (code, stage, path) of its quarantine reason
REFUSED = {
    "unknown_vr.dcm": ("unreadable", "read", "(0008,0060)"),
    "deeply_nested.dcm": ("too-deeply-nested", "read", "(0040,A730)"),
    "deeply_nested_undefined.dcm": ("too-deeply-nested", "read", ""),
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    incoming = root / "incoming"
    patient = make_patient(7)
    good = write_sample_study(incoming, patient, slices=SLICES, size=SIZE)
    hostile, limit = incoming / "hostile", incoming / "limit"
    refused = [oddities.unknown_vr(hostile, patient),
               oddities.deeply_nested(hostile, patient, depth=600),
               oddities.deeply_nested(hostile, patient, depth=600, undefined=True)]
    # nesting up to the limit is released (a real SR's content tree nests ~10 levels)
    good.append(oddities.deeply_nested(limit, make_patient(8), depth=MAX_NESTING))
    result = deid(*run_args(incoming, root / "out", key_file))
    return {"result": result, "good": good, "refused": refused, "out": root / "out",
            "quarantine": root / "out-quarantine"}


def test_each_is_quarantined_with_a_reason_to_act_on(scene) -> None:
    result = scene["result"]
    assert result.returncode == 3, result.stderr
    assert f"{len(scene['good'])} written" in result.stdout
    assert "internal-error" not in result.stdout + result.stderr
    entries = {}
    for entry in scene["quarantine"].iterdir():
        entries[(entry / "original.dcm").read_bytes()] = json.loads(
            (entry / "reason.json").read_text())
    assert len(entries) == len(REFUSED)
    for path in scene["refused"]:
        reason = entries[path.read_bytes()]  # the original is kept, unchanged
        assert (reason["code"], reason["stage"], reason["path"]) == REFUSED[path.name]
        assert reason["code"] in REASONS and reason["message"]


def test_nesting_within_the_limit_is_released_whole(scene) -> None:
    released = [pydicom.dcmread(p, stop_before_pixels=True) for p in scene["out"].rglob("*.dcm")]
    assert len(released) == len(scene["good"])
    nested = [ds for ds in released if "ContentSequence" in ds]
    assert len(nested) == 1
    depth, item = 0, nested[0]
    while "ContentSequence" in item:
        depth, item = depth + 1, item.ContentSequence[0]
    assert depth == MAX_NESTING
