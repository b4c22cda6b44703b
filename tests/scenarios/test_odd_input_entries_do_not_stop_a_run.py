"""A user's export holds odd entries beside the images: a file named in Big5 (not UTF-8), links to
nothing or in a loop, a FIFO, a socket, a device, a file far too large.  Each is judged alone: the
images are released, the Big5-named one too; the odd entries are skipped and counted (never opened,
never named), the too-large file is quarantined unread; the run ends instead of hanging or crashing,
and a rerun skips everything it finished."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest
from support import SIZE, deid, run_args, tree

from deid.intake.folders import SKIPPED_KINDS, SourceFile
from deid.keys import SecretKey
from deid.run import source_ref
from deid.synthetic import make_patient, write_sample_study

BIG5_NAME = "陳美玲.dcm".encode("big5")  # what a Taiwanese PACS export may name a file
STUDY = 4 * 2 + 1  # objects of the sample study written below (2 slices per phase, and the RTSS)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("odd")
    incoming = root / "incoming"
    write_sample_study(incoming, make_patient(0), slices=2, size=SIZE)
    other = write_sample_study(root / "other", make_patient(1), slices=1, size=SIZE)[0]
    big5 = os.fsencode(incoming) + b"/" + BIG5_NAME
    with open(big5, "wb") as handle:  # another patient's object under a name that is not UTF-8
        handle.write(other.read_bytes())
    odd = incoming / "odd"
    odd.mkdir()
    (odd / "dangling.dcm").symlink_to(odd / "gone.dcm")
    (odd / "loop-a.dcm").symlink_to(odd / "loop-b.dcm")
    (odd / "loop-b.dcm").symlink_to(odd / "loop-a.dcm")
    os.mkfifo(odd / "fifo.dcm")  # opened for reading, it would wait for a writer forever
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(odd / "socket.dcm"))
    try:
        os.mknod(odd / "zero.dcm", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: endless bytes
        devices = 1
    except PermissionError:  # not root: no device node of our own (a FIFO and a socket remain)
        devices = 0
    (odd / "huge.dcm").write_bytes(b"\0" * (3 << 20))  # over the limit given below
    first = deid(*run_args(incoming, root / "out", key_file, "--max-object-size", "1 MiB"))
    again = deid(*run_args(incoming, root / "out", key_file, "--max-object-size", "1 MiB"))
    quarantine = sorted((root / "out-quarantine").iterdir())
    larger = deid(*run_args(incoming, root / "out", key_file, "--max-object-size", "4 MiB"))
    return {"root": root, "incoming": incoming, "first": first, "again": again, "larger": larger,
            "devices": devices, "quarantine": quarantine}


def test_the_run_ends_releasing_the_images_and_the_big5_named_file(scene: dict) -> None:
    first = scene["first"]
    assert first.returncode == 3, first.stderr  # 3: the too-large file is quarantined
    assert "Traceback" not in first.stderr
    assert f"{STUDY + 2} objects: {STUDY + 1} written" in first.stdout
    released = [p for p in tree(scene["root"] / "out") if p.endswith(".dcm")]
    assert len(released) == STUDY + 1


def test_odd_entries_are_skipped_and_counted_by_kind(scene: dict) -> None:
    counts = {"broken-link": 1, "link-loop": 2, "special-file": 2 + scene["devices"]}
    shown = ", ".join(f"{kind} {n}" for kind, n in counts.items())
    assert f"{sum(counts.values())} input entries skipped (not files: {shown})" in scene["first"].stdout
    summary = json.loads((scene["root"] / "out-records" / "summary.json").read_text())
    assert summary["skipped_entries"] == counts and set(counts) <= set(SKIPPED_KINDS)


def test_the_too_large_file_is_quarantined_unread_and_named_only_there(scene: dict) -> None:
    (entry,) = scene["quarantine"]
    assert [p.name for p in entry.iterdir()] == ["reason.json"]  # no copy: it was not read
    reason = json.loads((entry / "reason.json").read_text())
    assert reason["code"] == "too-large" and reason["stage"] == "read"
    assert reason["source"] == "odd/huge.dcm"  # relative to the SRC argument
    assert "--max-object-size" in reason["message"] and "too-large 1" in scene["first"].stdout


def test_no_odd_name_is_printed(scene: dict) -> None:
    printed = scene["first"].stdout + scene["first"].stderr + scene["again"].stdout + scene["again"].stderr
    for name in ("dangling", "loop-a", "fifo", "socket", "zero", "huge", "\\xb3", "陳"):
        assert name not in printed
    assert BIG5_NAME.decode("utf-8", "surrogateescape") not in printed


def test_a_rerun_skips_everything_but_tries_the_too_large_file_again(scene: dict) -> None:
    again = scene["again"]
    assert again.returncode == 3, again.stderr
    assert f"{STUDY + 2} objects: 0 written, {STUDY + 1} skipped (already done), 1 quarantined" in again.stdout
    larger = scene["larger"]  # with a larger limit it is read: 3 MiB of zeros is no DICOM file
    assert f"0 written, {STUDY + 1} skipped (already done), 1 quarantined" in larger.stdout
    assert "(reasons: not-dicom 1)" in larger.stdout


def test_journal_keys_of_utf8_names_are_unchanged(tmp_path: Path) -> None:
    """A journal written before names were hashed as bytes still matches its sources."""
    key = SecretKey(bytes(range(32)))
    path = tmp_path / "CHEN^MEI-LING" / "影像.dcm"
    source = SourceFile(path, 1234, 5678)
    before = key.hexdigest("source", f"{path}\x001234\x005678")[:32]  # the former key
    assert source_ref(key, source) == before
    big5 = SourceFile(Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + BIG5_NAME)), 1, 2)
    assert len(source_ref(key, big5)) == 32


def test_a_device_or_fifo_named_on_the_command_line_is_skipped(tmp_path: Path, key_file: Path) -> None:
    fifo = tmp_path / "fifo.dcm"
    os.mkfifo(fifo)
    result = deid(*run_args([fifo, Path("/dev/zero")], tmp_path / "out", key_file))
    assert result.returncode == 3, result.stderr  # an input with no file is not a release
    assert "no files found in the input" in result.stdout and "special-file 2" in result.stdout
    assert not (tmp_path / "out").exists()  # nothing written
