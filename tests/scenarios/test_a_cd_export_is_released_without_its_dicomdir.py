"""A user runs deid over a CD export (a DICOMDIR and its images, laid out by pydicom's FileSet from
real test images): the images are released, the DICOMDIR (names and IDs of the patients on the disc)
is quarantined as ``media-directory``, with a reason that says there is nothing to do.  pydicom's own
TINY_ALPHA disc holds header-only stubs without pixels: those are ``incomplete-object``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from support import deid, run_args

from deid.audit.reasons import describe

_IMAGES = ("CT_small.dcm", "MR_small.dcm")


def _disc(folder: Path) -> Path:
    fileset = FileSet()
    for name in _IMAGES:
        fileset.add(pydicom.dcmread(get_testdata_file(name)))
    fileset.write(folder)
    return folder / "DICOMDIR"


def test_a_cd_export_is_released_without_its_dicomdir(tmp_path: Path, key_file: Path) -> None:
    disc = _disc(tmp_path / "cd")
    images = [p for p in (tmp_path / "cd").rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert len(images) == len(_IMAGES)

    result = deid(*run_args(tmp_path / "cd", tmp_path / "out", key_file))
    assert result.returncode == 3, result.stderr
    assert f"{len(_IMAGES)} written" in result.stdout and "media-directory 1" in result.stdout
    released = list((tmp_path / "out").rglob("*.dcm"))
    assert len(released) == len(_IMAGES)
    (entry,) = (tmp_path / "out-quarantine").iterdir()
    reason = json.loads((entry / "reason.json").read_text())
    assert reason["code"] == "media-directory" and reason["stage"] == "read"
    directory = pydicom.dcmread(disc)
    names = {str(record.PatientName) for record in directory.DirectoryRecordSequence if "PatientName" in record}
    assert names and not any(name in json.dumps(reason) for name in names)
    assert "Nothing" in describe("media-directory")[1]


def test_a_disc_of_header_only_stubs_releases_nothing(tmp_path: Path, key_file: Path) -> None:
    disc = Path(get_testdata_file("TINY_ALPHA/DICOMDIR") or "")
    assert disc.is_file()
    export = tmp_path / "cd"
    shutil.copytree(disc.parent, export, ignore=shutil.ignore_patterns("README"))

    result = deid(*run_args(export, tmp_path / "out", key_file))
    assert result.returncode == 3, result.stderr
    assert "0 written" in result.stdout
    assert "incomplete-object 50" in result.stdout and "media-directory 1" in result.stdout
    assert not list((tmp_path / "out").rglob("*.dcm"))
