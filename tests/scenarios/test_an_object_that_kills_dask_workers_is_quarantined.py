"""An object that crashes every Dask worker it reaches (a crash in a C decoder) does not stop a
cluster run: the task holding it is done again file by file, the object is quarantined
``worker-crashed`` on the client, naming its source, and everything else is released as a local
run releases it.

A real ``dask scheduler`` (allowing one failure per task) and two ``dask worker --nworkers 1``
on 127.0.0.1 whose processes kill themselves on the poison file (tests/daskpreload.py); their
nannies start them again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daskcluster import Scheduler, Worker, require_distributed
from support import deid, run_args, tree

from deid.synthetic import make_patient, write_sample_study

require_distributed()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_sample_study(tmp_path_factory.mktemp("study") / "incoming", make_patient(4),
                              slices=3, size=16)


def test_a_poison_object_is_quarantined_and_the_cluster_run_goes_on(
        tmp_path: Path, study: list[Path], key_file: Path) -> None:
    poison = study[5]
    source = study[0].parent.parent
    local = deid(*run_args(source, tmp_path / "local", key_file, "--workers", "1"))
    assert local.returncode == 0, local.stderr

    scheduler = Scheduler(tmp_path, env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    workers: list[Worker] = []
    try:
        for number in (1, 2):
            workers.append(Worker(scheduler, tmp_path / f"worker-{number}.log",
                                  env={"DEID_TEST_POISON": poison.name}))
        for worker in workers:
            worker.wait_registered()
        result = deid(*run_args(source, tmp_path / "out", key_file, "--cluster", scheduler.address))
    finally:
        for process in (*workers, scheduler):
            process.stop()

    assert result.returncode == 3, result.stdout + result.stderr  # done, one object waits
    assert f"{len(study) - 1} written" in result.stdout and "1 quarantined" in result.stdout
    assert "its files are done again one by one" in result.stderr
    released, everything = tree(tmp_path / "out"), tree(tmp_path / "local")
    assert len(released) == len(everything) - 1
    assert all(everything[name] == data for name, data in released.items())  # a local run's bytes
    [entry] = list((tmp_path / "out-quarantine").iterdir())
    reason = json.loads((entry / "reason.json").read_text())
    assert reason["code"] == "worker-crashed"
    assert reason["source"] == str(poison.relative_to(source))
    assert (entry / "original.dcm").read_bytes() == poison.read_bytes()
