"""A user's input folder holds links that lead out of it: to a system file (`ln -s /etc/shadow
in/s.dcm`), to a DICOM file of another patient elsewhere, to a folder elsewhere.  None is followed:
nothing of theirs reaches the quarantine (which reviewers are handed) or the output; they are
counted and the summary says how to follow them.  With --follow-links the user chose them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SIZE, deid, run_args, tree

from deid.synthetic import make_patient, study_folder_name, write_sample_study

SECRET = b"root:$6$planted-secret-hash:19000:0:99999:7:::\n"
STUDY = 4 * 2 + 1  # objects of the sample study (2 slices per phase, and the RTSS)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("links")
    incoming = root / "incoming"
    write_sample_study(incoming, make_patient(0), slices=2, size=SIZE)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    shadow = elsewhere / "shadow"
    shadow.write_bytes(SECRET)  # stands for /etc/shadow: a file the user never meant to hand out
    other = write_sample_study(elsewhere / "other", make_patient(1), slices=1, size=SIZE)
    (incoming / "s.dcm").symlink_to(shadow)
    (incoming / "other.dcm").symlink_to(other[0])
    (incoming / "more").symlink_to(other[0].parent)  # a folder elsewhere
    (incoming / "again.dcm").symlink_to(next(incoming.rglob("CT_A_001.dcm")))  # inside: followed
    result = deid(*run_args(incoming, root / "out", key_file))
    reference = deid(*run_args(incoming / study_folder_name(make_patient(0)), root / "reference", key_file))
    assert reference.returncode == 0, reference.stderr
    return {"root": root, "incoming": incoming, "result": result, "other": other}


def _every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_links_leaving_the_source_are_counted_not_followed(scene: dict) -> None:
    result = scene["result"]
    assert result.returncode == 0, result.stderr
    assert "link-outside-source 3" in result.stdout and "give --follow-links" in result.stdout
    summary = json.loads((scene["root"] / "out-records" / "summary.json").read_text())
    assert summary["skipped_entries"] == {"link-outside-source": 3}


def test_nothing_of_theirs_reaches_the_output_or_the_quarantine(scene: dict) -> None:
    root = scene["root"]
    assert tree(root / "out") == tree(root / "reference")  # only the study itself is released
    quarantine = root / "out-quarantine"
    assert not any(quarantine.iterdir())
    for folder in ("out", "out-quarantine", "out-records"):
        assert SECRET not in _every_byte(root / folder)


def test_with_follow_links_the_user_chooses_them(scene: dict, key_file: Path) -> None:
    root = scene["root"]
    result = deid(*run_args(scene["incoming"], root / "followed", key_file, "--follow-links"))
    assert result.returncode == 3, result.stderr  # the shadow file is not DICOM: quarantined
    released = [p for p in tree(root / "followed") if p.endswith(".dcm")]
    assert len(released) == STUDY + len(scene["other"])  # the other patient's study, reached twice, once
    (entry,) = (root / "followed-quarantine").iterdir()
    assert json.loads((entry / "reason.json").read_text())["code"] == "not-dicom"
