"""A user runs `deid run` on a terminal over a folder with many files that are no image.  The log
lines never break the progress bar (each starts on its own line, none is glued to the bar); a code
repeated many times is logged five times, then counted in one line at the end; -q shows neither bar
nor progress lines.  An empty input folder says so and exits 3.

The terminal is a pseudo-terminal; what it shows is rebuilt from the bytes the command wrote (a
carriage return starts writing again at the first column, as on a screen)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from support import deid, run_args

from deid.synthetic import make_patient, write_sample_study

LETTERS = 12  # files that are no image: more than the five warnings of a code that are shown


def on_a_terminal(*args: object, columns: int = 120) -> tuple[int, str]:
    """Run deid with a pseudo-terminal as stdin, stdout and stderr; its exit code and what it wrote."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("DEID_KEY_FILE", "DEID_LOG_LEVEL")}
    process = subprocess.Popen([sys.executable, "-m", "deid", *map(str, args)], stdin=follower, stdout=follower,
                               stderr=follower, env=environment, close_fds=True)
    os.close(follower)
    written = bytearray()
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 300)
            if not ready:
                break  # a bound on the wait, not a timed assertion: the exit code below tells
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the command closed the terminal
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(leader)
    return process.wait(timeout=300), written.decode("utf-8", "replace")


def screen(written: str) -> list[str]:
    """The lines a terminal shows for ``written`` (carriage returns overwrite from the first column)."""
    lines = []
    for line in written.replace("\r\n", "\n").split("\n"):
        cells: list[str] = []
        for part in line.split("\r"):
            cells[: len(part)] = part
        lines.append("".join(cells).rstrip())
    return lines


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("terminal")
    incoming = root / "incoming"
    write_sample_study(incoming, make_patient(4), slices=2, size=16)
    for number in range(LETTERS):
        (incoming / "letters").mkdir(exist_ok=True)
        (incoming / "letters" / f"letter{number:02d}.dcm").write_text(f"Scanned referral letter {number}.\n")
    code, written = on_a_terminal("run", incoming, "--out", root / "out", "--key-file", key_file)
    return {"root": root, "incoming": incoming, "code": code, "written": written, "lines": screen(written)}


def test_the_bar_is_drawn_and_no_log_line_breaks_it(scene: dict) -> None:
    assert scene["code"] == 3, scene["written"]
    lines = scene["lines"]
    assert any(re.search(r"100%\|.*obj/s", line) for line in lines)  # the bar, on the terminal
    logged = [line for line in lines if re.search(r"\[(info|warning) *\]", line)]
    assert logged and "run started" in logged[0] and "run finished" in logged[-1]
    for line in logged:
        assert re.match(r"\d{4}-\d\d-\d\dT", line), line  # starts its own line
        assert "obj/s" not in line and "%|" not in line, line  # nothing of the bar glued to it


def test_a_repeated_code_is_logged_five_times_then_counted(scene: dict) -> None:
    lines = scene["lines"]
    one_by_one = [line for line in lines if re.search(r"\] quarantined .*code=not-dicom", line)]
    assert len(one_by_one) == 5
    (counted,) = [line for line in lines if "more quarantined" in line]
    assert "code=not-dicom" in counted and f"count={LETTERS - 5}" in counted
    assert f"not-dicom {LETTERS}" in scene["written"]  # the summary still counts every one


def test_quiet_shows_no_bar_and_no_progress_lines(scene: dict, key_file: Path) -> None:
    code, written = on_a_terminal("run", scene["incoming"], "--out", scene["root"] / "quiet", "--key-file",
                                  key_file, "-q")
    assert code == 3, written
    assert "%|" not in written and "run started" not in written and "run finished" not in written
    assert "more quarantined" in written and "deid run:" in written  # warnings and the summary stay


def test_an_empty_input_says_so_and_exits_3(tmp_path: Path, key_file: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("skipped, as hidden files are\n")
    result = deid(*run_args(tmp_path / "empty", tmp_path / "out", key_file))
    assert result.returncode == 3, result.stderr
    assert "no files found in the input: nothing to release" in result.stdout
    assert not (tmp_path / "out").exists()
