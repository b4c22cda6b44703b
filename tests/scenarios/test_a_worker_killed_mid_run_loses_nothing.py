"""A worker process of ``deid run --workers N`` dies in the middle of a run (the kernel's
out-of-memory killer, a crash in a C decoder): the run replaces it and does what it held again,
so the output is the one a run without the death makes; an object that kills every worker it
reaches is quarantined ``worker-crashed``, naming its source, and the run goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import run_args, tree

from deid import cli
from deid.run import loop
from deid.synthetic import make_patient, write_sample_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_sample_study(tmp_path_factory.mktemp("study") / "incoming", make_patient(2),
                              slices=30, size=128)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


def test_a_worker_killed_by_the_system_costs_nothing(tmp_path: Path, study: list[Path],
                                                      key_file: Path) -> None:
    source = study[0].parent.parent
    once = subprocess.run([sys.executable, "-m", "deid", *map(str, run_args(
        source, tmp_path / "w1", key_file, "--workers", "1"))], capture_output=True, text=True,
        timeout=300, check=False)
    assert once.returncode == 0, once.stderr

    run = subprocess.Popen([sys.executable, "-m", "deid", *map(str, run_args(
        source, tmp_path / "out", key_file, "--workers", "2"))], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 60
        while killed is None and run.poll() is None and time.monotonic() < deadline:
            workers = _children(run.pid)
            if workers:  # the first forked: it is given its first batches as soon as both are
                os.kill(workers[0], signal.SIGKILL)
                killed = workers[0]
            time.sleep(0.0005)
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert killed is not None, "the run ended before its workers could be seen"
    assert run.returncode == 0, err
    assert "worker process lost" in err and "signal 9" in err
    assert "0 quarantined" in out
    assert tree(tmp_path / "out") == tree(tmp_path / "w1")  # nothing lost, nothing twice


def test_an_object_that_kills_every_worker_is_quarantined_and_the_run_goes_on(
        tmp_path: Path, study: list[Path], key_file: Path, capsys, monkeypatch) -> None:
    poison = study[7]
    stage = loop._stage

    def dies_on_the_poison(item: tuple[str, str, str]):
        if item[1] == str(poison):
            os.kill(os.getpid(), signal.SIGKILL)  # as a crash in a C decoder would
        return stage(item)

    monkeypatch.setattr(loop, "_stage", dies_on_the_poison)  # forked workers inherit it
    source = study[0].parent.parent
    code = cli.main([str(arg) for arg in run_args(source, tmp_path / "out", key_file,
                                                  "--workers", "2")])
    captured = capsys.readouterr()
    assert code == 3, captured  # done, with an object waiting in the quarantine
    assert f"{len(study) - 1} written" in captured.out and "1 quarantined" in captured.out
    assert len([p for p in (tmp_path / "out").rglob("*.dcm")]) == len(study) - 1
    entries = list((tmp_path / "out-quarantine").iterdir())
    assert len(entries) == 1
    reason = json.loads((entries[0] / "reason.json").read_text())
    assert reason["code"] == "worker-crashed"
    assert reason["source"] == str(poison.relative_to(source))
    assert "3 times" in reason["message"]  # once in its batch, twice alone
    assert (entries[0] / "original.dcm").read_bytes() == poison.read_bytes()


CRASHING_RUN = """
import os, signal, sys
from deid import cli
from deid.run import loop

poison, work = sys.argv[1], loop._work

def dies_on_the_poison(item):
    if item[1] == poison:
        os.kill(os.getpid(), signal.SIGKILL)  # as a crash in a C decoder would
    return work(item)

loop._work = dies_on_the_poison
sys.exit(cli.main(sys.argv[2:]))
"""


def test_with_one_worker_an_object_that_kills_the_run_is_quarantined_on_the_third_run(
        tmp_path: Path, study: list[Path], key_file: Path) -> None:
    """``--workers 1`` does each object in the run's own process: the run dies with it, and so
    does the next; the third quarantines it and completes the rest."""
    poison = study[9]
    source = study[0].parent.parent
    argv = [sys.executable, "-c", CRASHING_RUN, str(poison),
            *map(str, run_args(source, tmp_path / "out", key_file, "--workers", "1"))]
    note = tmp_path / "out-records" / "working"
    for _ in range(2):
        died = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert died.returncode == -signal.SIGKILL, died.stderr
        assert note.is_file()  # which object it was on (a journal key, no path)
        assert str(poison.name) not in note.read_text() and "/" not in note.read_text()
    third = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert third.returncode == 3, third.stderr
    assert "1 quarantined" in third.stdout
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == len(study) - 1
    [entry] = list((tmp_path / "out-quarantine").iterdir())
    reason = json.loads((entry / "reason.json").read_text())
    assert reason["code"] == "worker-crashed"
    assert reason["source"] == str(poison.relative_to(source))
    assert "the run's process died 2 times" in reason["message"]
    assert not note.exists()  # nothing under way once the run ended
