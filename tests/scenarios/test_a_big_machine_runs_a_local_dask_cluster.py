"""On one big machine, `deid run --cluster local:N` starts a Dask LocalCluster of N processes for
the run (and stops it): the output (side-car annotations too), quarantine and audit lines are
those of `--workers 1`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from daskcluster import require_distributed
from support import deid, run_args, tree

from deid.synthetic import four_phase_ct, make_patient, write_dataset, write_sample_study
from deid.synthetic.sidecars import write_voc

require_distributed()


def _audit(out: Path) -> list[dict]:
    lines = []
    for path in sorted((out.parent / f"{out.name}-records" / "audit").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("time", "run_id")} for line in lines]


def test_local_n_gives_the_release_of_one_worker(tmp_path: Path, key_file: Path) -> None:
    source = tmp_path / "in"
    patient = make_patient(6)
    write_sample_study(source, patient, slices=4, size=16, seg=True, sr=True)
    images = four_phase_ct(patient, slices=4, size=16)
    write_voc(source / "boxes", images["P"][2], patient)  # a PASCAL VOC box, named by the image's UID
    again = copy.deepcopy(images["A"][1])  # other content, same UID
    again.SeriesInstanceUID = patient.series_uid("RECONSTRUCTED-AGAIN")
    write_dataset(again, source / "zz-reconstructed" / "again.dcm")
    local, cluster = tmp_path / "local", tmp_path / "cluster"

    one = deid(*run_args(source, local, key_file))
    on_cluster = deid(*run_args(source, cluster, key_file, "--cluster", "local:2"))

    assert one.returncode == on_cluster.returncode == 3, one.stdout + on_cluster.stdout + on_cluster.stderr
    assert "duplicate-instance 1" in on_cluster.stdout
    assert tree(cluster) == tree(local)
    assert [name for name in tree(cluster) if name.startswith("annotations/")]
    assert tree(tmp_path / "cluster-quarantine") == tree(tmp_path / "local-quarantine")
    assert _audit(cluster) == _audit(local)


def test_local_needs_a_number_of_processes(tmp_path: Path, key_file: Path) -> None:
    result = deid(*run_args(tmp_path, tmp_path / "out", key_file, "--cluster", "local:0"))
    assert result.returncode == 2
    assert "local:N" in result.stderr
    assert not (tmp_path / "out").exists()  # refused before anything is made
