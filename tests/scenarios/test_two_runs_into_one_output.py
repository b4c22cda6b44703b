"""Two users start `deid run` into the same output folder, each with their own records folder.  The
second is refused (exit 2, a message saying why) and touches nothing of the first, whose temp files
stay its own; the first completes the whole output.  A later run on the output takes over, and
clears what a run that was killed left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import deid, run_args, tree

from deid.synthetic import make_patient, write_sample_study

LOCK = ".deid-run.lock"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> tuple[Path, dict[str, bytes]]:
    """A study of a few hundred small objects (a run over it lasts long enough to be caught) and
    its release."""
    root = tmp_path_factory.mktemp("two")
    write_sample_study(root / "incoming", make_patient(0), slices=60, size=16)
    result = deid(*run_args(root / "incoming", root / "reference", key_file))
    assert result.returncode == 0, result.stderr
    return root / "incoming", tree(root / "reference")


def _start(source: Path, out: Path, key_file: Path, records: Path) -> subprocess.Popen[str]:
    args = run_args(source, out, key_file, "--records", records, "--quarantine", records.with_suffix(".q"))
    return subprocess.Popen([sys.executable, "-m", "deid", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_second_run_into_the_same_output_is_refused_and_harms_nothing(tmp_path: Path, study,
                                                                        key_file: Path) -> None:
    source, reference = study
    out = tmp_path / "out"
    first = _start(source, out, key_file, tmp_path / "records-a")
    try:
        deadline = time.monotonic() + 120  # a bound on the wait, not a timed assertion
        while not (out / LOCK).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        first.send_signal(signal.SIGSTOP)  # the first run, caught in the middle, holding the output
        assert first.poll() is None and (out / LOCK).exists(), "the first run ended before it was caught"
        in_flight = out / ".planted.dcm.0123456789ab-1.partial"  # a temp file of a run at work
        in_flight.write_bytes(b"half")
        before = tree(out)

        second = deid(*run_args(source, out, key_file, "--records", tmp_path / "records-b",
                                "--quarantine", tmp_path / "records-b.q"))
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"{out}: another deid run is writing into this output folder" in second.stderr
        assert "wait for it to finish" in second.stderr and "Traceback" not in second.stderr
        assert tree(out) == before  # not a file of the first run touched, its temp files included
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    released = tree(out)
    released.pop(in_flight.name, None)  # (the first run may have cleared it, had it not started yet)
    assert released == reference  # the first run completed the output; no lock left behind

    third = deid(*run_args(source, out, key_file, "--records", tmp_path / "records-b",
                           "--quarantine", tmp_path / "records-b.q"))
    assert third.returncode == 0, third.stderr
    assert tree(out) == reference  # the leftover of a run no longer running is cleared


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path, study, key_file: Path) -> None:
    source, reference = study
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_bytes(b"")  # what a run killed with kill -9 leaves: the file, not the lock
    result = deid(*run_args(source, out, key_file))
    assert result.returncode == 0, result.stderr
    assert tree(out) == reference
