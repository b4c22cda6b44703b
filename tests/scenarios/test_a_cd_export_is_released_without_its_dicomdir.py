"""A user runs deid over a CD export (pydicom's TINY_ALPHA: a DICOMDIR and its 50 images): the images
are released, the DICOMDIR (names and IDs of the patients on the disc) is quarantined as
``media-directory``, with a reason that says there is nothing to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from support import deid, run_args

from deid.audit.reasons import describe


def test_a_cd_export_is_released_without_its_dicomdir(tmp_path: Path, key_file: Path) -> None:
    disc = Path(get_testdata_file("TINY_ALPHA/DICOMDIR") or "")
    assert disc.is_file()
    export = tmp_path / "cd"
    shutil.copytree(disc.parent, export, ignore=shutil.ignore_patterns("README"))
    images = [p for p in export.rglob("IM*") if p.is_file()]
    assert len(images) == 50

    result = deid(*run_args(export, tmp_path / "out", key_file))
    assert result.returncode == 3, result.stderr
    assert "50 written" in result.stdout and "media-directory 1" in result.stdout
    released = list((tmp_path / "out").rglob("*.dcm"))
    assert len(released) == 50
    (entry,) = (tmp_path / "out-quarantine").iterdir()
    reason = json.loads((entry / "reason.json").read_text())
    assert reason["code"] == "media-directory" and reason["stage"] == "read"
    directory = pydicom.dcmread(disc)
    names = {str(record.PatientName) for record in directory.DirectoryRecordSequence if "PatientName" in record}
    assert names and not any(name in json.dumps(reason) for name in names)
    assert "Nothing" in describe("media-directory")[1]
