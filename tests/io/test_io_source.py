"""Reading an input file: regular files only, never waiting on a FIFO or a device, never past a limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deid.errors import ObjectError
from deid.io.source import NotRegularFile, read_source, shown


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(b"x" * 5000)
    assert read_source(path) == b"x" * 5000
    assert read_source(path, 5000) == b"x" * 5000
    (tmp_path / "empty").write_bytes(b"")
    assert read_source(tmp_path / "empty", 10) == b""


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(b"x" * 5001)
    with pytest.raises(ObjectError) as raised:
        read_source(path, 5000)
    assert raised.value.code == "too-large" and "5001" in raised.value.message


def test_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotRegularFile):
        read_source(tmp_path / "fifo", 10)  # would block forever if opened for a plain read


def test_a_device_is_not_read(tmp_path: Path) -> None:
    with pytest.raises(NotRegularFile):
        read_source(Path("/dev/zero"), 10)


def test_a_link_swapped_in_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        read_source(tmp_path / "link")


def test_a_name_that_is_not_utf8_is_shown_escaped() -> None:
    name = os.fsdecode(b"/in/" + "陳.dcm".encode("big5"))
    assert shown(name) == "/in/\\xb3\\xaf.dcm"
    assert shown("/in/陳.dcm") == "/in/陳.dcm"
