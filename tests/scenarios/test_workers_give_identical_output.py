"""A user runs with more workers, lists the files in another order, or splits the work over two
runs: the output tree is the same, byte for byte."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from support import deid, run_args, tree

from deid.synthetic import make_patient, write_sample_study


@pytest.fixture(scope="module")
def two_patients(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("two") / "incoming"
    return write_sample_study(folder, make_patient(0), slices=3, size=16) + \
        write_sample_study(folder, make_patient(5), slices=2, size=16)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, two_patients: list[Path], key_file: Path) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("w1") / "out"
    result = deid(*run_args(two_patients[0].parent.parent, out, key_file, "--workers", "1"))
    assert result.returncode == 0, result.stderr
    files = tree(out)
    assert len(files) == len(two_patients) == 13 + 9
    return files


def _check(result) -> None:
    assert result.returncode == 0, result.stderr


def test_two_workers(tmp_path: Path, two_patients: list[Path], key_file: Path, baseline) -> None:
    _check(deid(*run_args(two_patients[0].parent.parent, tmp_path / "out", key_file, "--workers", "2")))
    assert tree(tmp_path / "out") == baseline


def test_shuffled_file_order_with_two_workers(tmp_path: Path, two_patients: list[Path], key_file: Path,
                                              baseline) -> None:
    files = list(two_patients)
    random.Random(20170415).shuffle(files)
    assert files != two_patients
    _check(deid(*run_args(files, tmp_path / "out", key_file, "--workers", "2")))
    assert tree(tmp_path / "out") == baseline


def test_split_across_two_runs(tmp_path: Path, two_patients: list[Path], key_file: Path, baseline) -> None:
    files = list(two_patients)
    random.Random(622).shuffle(files)
    half = len(files) // 2
    first = deid(*run_args(files[:half], tmp_path / "out", key_file, "--workers", "2"))
    second = deid(*run_args(files[half:], tmp_path / "out", key_file))
    _check(first)
    _check(second)
    assert f"{half} written" in first.stdout and f"{len(files) - half} written" in second.stdout
    assert tree(tmp_path / "out") == baseline
