"""A data team releases a collection on their Dask cluster (`deid run --cluster tcp://HOST:8786`):
the output, quarantine, audit lines and summary are
those of `deid run --workers 1` on a laptop, byte for byte; a worker lost half-way has its batches
done again by the others, and a client killed half-way is completed by the next run, on the
cluster or locally, with nothing lost or doubled.  The key and the patients' names never reach
Dask: task keys are HMACs, task arguments are sealed, the logs hold neither.

A real `dask scheduler` and two `dask worker --nworkers 1 --nthreads 1` on 127.0.0.1; the second
worker is slow (tests/daskpreload.py), so it is caught in the middle of a batch when killed.  The
test that kills it runs last.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daskcluster import Scheduler, Worker
from support import REPO, deid, run_args, tree

from deid.run import BATCH
from deid.synthetic import (
    four_phase_ct,
    make_patient,
    study_folder_name,
    write_dataset,
    write_sample_study,
)

PATIENTS = (make_patient(2), make_patient(3))
SLICES = 10  # 2 x (4 phases x 10 + RTSS + SEG + SR) + one duplicate = 87 objects: > one journal batch
TOTAL = 2 * (4 * SLICES + 3) + 1
KEY_HEX = bytes(range(32)).hex()  # the conftest key_file's key
SLOW = "0.05"  # seconds the slow worker waits after each file

# deid run --cluster in a process that dies like kill -9 (os._exit: no clean-up) when it is about to
# place object KILL_AT, once the first journal batch is on disk.
KILL_AT = BATCH + 10
KILLED_CLIENT = """
import os, sys, time
from pathlib import Path
from deid import staging
from deid.cli import main

records, kill_at, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
place, calls = staging.Placer.place, [0]

def dying(self, done):
    calls[0] += 1
    if calls[0] == kill_at:
        journal = records / "journal.jsonl"
        deadline = time.monotonic() + 60
        while (not journal.exists() or not journal.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(137)
    return place(self, done)

staging.Placer.place = dying
main(argv)
"""


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two patients' studies (CT, RTSS, SEG and SR pointing at the CT) and, last in input order,
    another content under one CT slice's SOP Instance UID (a local run quarantines it)."""
    folder = tmp_path_factory.mktemp("collection") / "incoming"
    for patient in PATIENTS:
        write_sample_study(folder, patient, slices=SLICES, size=16, seg=True, sr=True)
    again = copy.deepcopy(four_phase_ct(PATIENTS[0], slices=SLICES, size=16)["P"][0])
    again.SeriesInstanceUID = PATIENTS[0].series_uid("RECONSTRUCTED-AGAIN")
    again.SeriesDescription = "reconstructed again"
    write_dataset(again, folder / "zz-reconstructed" / "again.dcm")
    return folder


def _records(out: Path) -> Path:
    return out.parent / f"{out.name}-records"


def _audit(out: Path) -> list[dict]:
    """Every audit line of the runs into ``out``, in order."""
    lines = []
    for path in sorted((_records(out) / "audit").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return lines


def _without_run(line: dict) -> dict:
    return {k: v for k, v in line.items() if k not in ("time", "run_id")}


def _journal(out: Path) -> list[dict]:
    text = (_records(out) / "journal.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def _summary(out: Path) -> dict:
    summary = json.loads((_records(out) / "summary.json").read_text())
    return {k: v for k, v in summary.items()
            if k not in ("run_id", "seconds", "output", "quarantine", "records", "audit")}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, collection: Path, key_file: Path) -> Path:
    """The collection released on this machine with one worker."""
    out = tmp_path_factory.mktemp("local") / "out"
    result = deid(*run_args(collection, out, key_file, "--workers", "1"))
    assert result.returncode == 3, result.stdout + result.stderr  # the duplicate is quarantined
    assert f"{TOTAL} objects: {TOTAL - 1} written" in result.stdout and "duplicate-instance 1" in result.stdout
    return out


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tasks = folder / "tasks.tsv"  # what the scheduler holds of each task (daskpreload)
        self.busy = folder / "slow-worker-busy"  # each worker touches its file once it staged a file
        self.steady_busy = folder / "steady-worker-busy"
        self.scheduler = Scheduler(folder, env={"DEID_TEST_TASKS": str(self.tasks)})
        self.workers: list[Worker] = []
        try:
            self.workers.append(Worker(self.scheduler, folder / "worker-1.log",
                                       env={"DEID_TEST_SLOW": "0", "DEID_TEST_BUSY": str(self.steady_busy)}))
            self.workers.append(Worker(self.scheduler, folder / "worker-slow.log",
                                       env={"DEID_TEST_SLOW": SLOW, "DEID_TEST_BUSY": str(self.busy)}))
            for worker in self.workers:
                worker.wait_registered()
        except BaseException:
            self.stop()
            raise

    def logs(self) -> str:
        return "".join(p.text() for p in (self.scheduler, *self.workers))

    def stop(self) -> None:
        for process in (*self.workers, self.scheduler):
            process.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield running
    finally:
        running.stop()


def _same_release(out: Path, local: Path) -> None:
    assert tree(out) == tree(local)
    assert tree(out.parent / f"{out.name}-quarantine") == tree(local.parent / f"{local.name}-quarantine")


def _each_once(out: Path, local: Path) -> None:
    """Every object journalled once, and every output has its audit line."""
    refs = [entry["ref"] for entry in _journal(out)]
    assert len(refs) == len(set(refs)) == TOTAL
    assert set(refs) == {entry["ref"] for entry in _journal(local)}
    audited = {line["output"] for line in _audit(out) if line["outcome"] in ("written", "skipped")}
    assert set(tree(out)) <= audited


def test_the_cluster_releases_the_bytes_of_a_local_run(tmp_path: Path, collection: Path, key_file: Path,
                                                      local: Path, cluster: Cluster) -> None:
    out = tmp_path / "out"
    for busy in (cluster.busy, cluster.steady_busy):
        busy.unlink(missing_ok=True)
    result = deid(*run_args(collection, out, key_file, "--cluster", cluster.scheduler.address))

    assert result.returncode == 3, result.stdout + result.stderr
    assert cluster.busy.exists() and cluster.steady_busy.exists()  # both workers took part
    _same_release(out, local)
    # the same records, in the same order: audit lines, journal, summary
    assert [_without_run(line) for line in _audit(out)] == [_without_run(line) for line in _audit(local)]
    assert _journal(out) == _journal(local)
    assert _summary(out) == _summary(local)
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # nothing staged is left

    # what Dask holds and logs: HMAC task keys, sealed arguments; no key, no name, no source path
    tasks = [line.split("\t") for line in cluster.tasks.read_text().splitlines()]
    assert tasks and all(re.fullmatch(r"deid-batch-[0-9a-f]{20}", key) for key, _spec, _args in tasks)
    assert all(re.fullmatch(r"\('deid-run-[0-9a-f]{16}', Sealed\(\d+ bytes\)\)", args) for *_, args in tasks)
    seen = cluster.tasks.read_text() + cluster.logs() + result.stderr
    assert KEY_HEX not in seen
    for patient in PATIENTS:
        assert study_folder_name(patient) not in seen
        assert not [value for value in patient.phi_values() if value in seen]
    assert str(collection) not in seen


@pytest.mark.parametrize("again_on", ["cluster", "this machine"])
def test_a_client_killed_half_way_is_completed_by_the_next_run(tmp_path: Path, collection: Path, key_file: Path,
                                                               local: Path, cluster: Cluster, again_on: str) -> None:
    out = tmp_path / "out"
    cluster_run = run_args(collection, out, key_file, "--cluster", cluster.scheduler.address)
    killed = subprocess.run([sys.executable, "-c", KILLED_CLIENT, _records(out), str(KILL_AT), *map(str, cluster_run)],
                            cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == 137, killed.stdout + killed.stderr
    done = len(_journal(out))
    assert BATCH <= done < TOTAL

    again = deid(*(cluster_run if again_on == "cluster" else run_args(collection, out, key_file)))

    assert again.returncode == 3, again.stdout + again.stderr
    # the duplicate, last in input order, is quarantined again; the rest written or skipped
    assert f"{TOTAL - done - 1} written, {done} skipped (already done), 1 quarantined" in again.stdout
    _same_release(out, local)
    _each_once(out, local)


def test_a_worker_lost_half_way_has_its_batches_done_by_the_others(tmp_path: Path, collection: Path,
                                                                   key_file: Path, local: Path,
                                                                   cluster: Cluster) -> None:
    out = tmp_path / "out"
    cluster.busy.unlink(missing_ok=True)
    slow = cluster.workers[1]
    with open(tmp_path / "run.log", "w") as log:
        running = subprocess.Popen([sys.executable, "-m", "deid", *map(str, run_args(
            collection, out, key_file, "--cluster", cluster.scheduler.address))], stdout=log, stderr=log, text=True)
        try:
            deadline = time.monotonic() + 120
            while not cluster.busy.exists() and running.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            slow.kill()  # in the middle of a batch: some of its files staged, the others not
            assert running.poll() is None, "the run ended before the worker was lost"
            placed = len([p for p in out.rglob("*.dcm")])
            assert placed < TOTAL - 1
            running.wait(timeout=240)
        finally:
            if running.poll() is None:
                running.kill()
    result = (tmp_path / "run.log").read_text()
    assert running.returncode == 3, result
    _same_release(out, local)
    _each_once(out, local)
    written = [line["output"] for line in _audit(out) if line["outcome"] == "written"]
    assert len(written) == len(set(written)) == TOTAL - 1  # each recorded once
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
