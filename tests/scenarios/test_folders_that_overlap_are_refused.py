"""A user gives folders that would mix the input with what deid writes: the output inside an input,
an input inside the output, the quarantine or records inside either or inside each other, or an
--out that is a file.  Each is refused with exit 2 and a message saying what to do; nothing is
written and the input is untouched (no original ends up inside a release folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import deid, tree


@pytest.fixture
def scene(tmp_path: Path, sample_study: Path) -> Path:
    """tmp/x/in (a copy of the sample study); everything else is chosen by each case."""
    shutil.copytree(sample_study, tmp_path / "x" / "in")
    return tmp_path


CASES = {
    # the example: the originals would land in the release folder
    "out-holds-the-input": (["x/in", "--out", "x"], "this input is inside the output folder",
                            "move the input out of it, or give another --out"),
    "out-inside-the-input": (["x/in", "--out", "x/in/released"], "the output folder",
                             "give --out outside every input"),
    "quarantine-inside-the-input": (["x/in", "--out", "out", "--quarantine", "x/in/q"], "the quarantine folder",
                                    "give --quarantine outside every input"),
    "records-inside-the-input": (["x/in", "--out", "out", "--records", "x/in/r"], "the records folder",
                                 "give --records outside every input"),
    "input-inside-the-records": (["x/in", "--out", "out", "--records", "x"], "this input is inside the records",
                                 "give another --records"),
    "quarantine-inside-the-output": (["x/in", "--out", "out", "--quarantine", "out/q"],
                                     "--quarantine must be outside the output folder", "only what may be released"),
    "quarantine-inside-the-records": (["x/in", "--out", "out", "--quarantine", "out-records/q"],
                                      "inside the records folder", "give folders side by side"),
    "records-are-the-quarantine": (["x/in", "--out", "out", "--quarantine", "same", "--records", "same"],
                                   "inside the", "give folders side by side"),
}


@pytest.mark.parametrize("case", CASES)
def test_overlapping_folders_exit_2_saying_what_to_do(scene: Path, key_file: Path, case: str) -> None:
    args, problem, advice = CASES[case]
    before = tree(scene)
    argv = [str(scene / a) if not a.startswith("--") else a for a in args]
    result = deid("run", *argv, "--key-file", key_file, "--no-progress")
    assert result.returncode == 2, result.stdout + result.stderr
    assert problem in result.stderr and advice in result.stderr
    assert "Traceback" not in result.stderr
    assert tree(scene) == before  # nothing written anywhere, the input untouched
    assert sorted(p.name for p in scene.iterdir()) == ["x"]


@pytest.mark.parametrize("flag", ["--out", "--quarantine", "--records"])
def test_a_folder_that_is_a_file_exits_2_not_a_traceback(scene: Path, key_file: Path, flag: str) -> None:
    existing = scene / "notes.txt"
    existing.write_text("kept\n")
    extra = [] if flag == "--out" else ["--out", scene / "out"]
    result = deid("run", scene / "x" / "in", *extra, flag, existing, "--key-file", key_file, "--no-progress")
    assert result.returncode == 2, result.stderr
    assert f"{flag} {existing} is a file, not a folder" in result.stderr and "give a new folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert existing.read_text() == "kept\n" and not (scene / "out").exists()


def test_an_output_holding_a_link_to_the_input_is_refused(scene: Path, key_file: Path) -> None:
    (scene / "release").mkdir()
    (scene / "release" / "in").symlink_to(scene / "x" / "in")  # the originals would be reachable from it
    result = deid("run", scene / "release" / "in", "--out", scene / "release", "--key-file", key_file,
                  "--no-progress")
    assert result.returncode == 2 and "this input is inside the output folder" in result.stderr
    assert sorted(p.name for p in scene.iterdir()) == ["release", "x"]
