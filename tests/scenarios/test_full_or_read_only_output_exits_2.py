"""A user's output disk fills up half-way, or the output is mounted read-only: `deid run` exits 2
with a message naming the folder and what to do (no traceback), and nothing half-written is left;
once space is freed (or the disk is writable) the same command completes the job, byte for byte.

The disks are real small tmpfs mounts (root is needed to mount: without it the test is skipped,
and fails in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from smalldisk import remount, small_disk
from support import deid, run_args, tree

from deid.synthetic import make_patient, write_sample_study


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted at ``tmp_path/disk`` (unmounted afterwards)."""
    with small_disk(tmp_path / "disk", size_mb=1, mode="0755") as point:
        yield point


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> tuple[Path, dict[str, bytes]]:
    """A study of about 4 MiB (more than the disk holds) and its release made on a roomy disk."""
    root = tmp_path_factory.mktemp("big")
    write_sample_study(root / "incoming", make_patient(0), slices=8, size=256)
    result = deid(*run_args(root / "incoming", root / "reference", key_file))
    assert result.returncode == 0, result.stderr
    return root / "incoming", tree(root / "reference")


def _args(source: Path, out: Path, tmp_path: Path, key_file: Path, *extra: str) -> list[object]:
    return run_args(source, out, key_file, "--records", tmp_path / "records", "--quarantine",
                    tmp_path / "quarantine", *extra)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_output_disk_exits_2_and_a_rerun_completes_it(disk: Path, tmp_path: Path, study,
                                                            key_file: Path, workers: str) -> None:
    source, reference = study
    out = disk / "out"
    result = deid(*_args(source, out, tmp_path, key_file, "--workers", workers))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot write into the output folder {out}: the disk is full" in result.stderr
    assert "Free space on its disk" in result.stderr and "run the same command again" in result.stderr
    written = tree(out)
    assert len(written) < len(reference)
    # with one worker what came before the full disk is in place; with two it may be nothing
    # (each staged what it released, and the one placed first in input order hit the full disk)
    assert written or workers == "2"
    assert all(reference[name] == data for name, data in written.items())  # whole files only

    remount(disk, "size=64m")  # space freed
    again = deid(*_args(source, out, tmp_path, key_file, "--workers", workers))
    assert again.returncode == 0, again.stderr
    assert tree(out) == reference  # complete, the same bytes, no temp file or lock left


def test_a_read_only_output_exits_2_and_a_rerun_completes_it(disk: Path, tmp_path: Path, study,
                                                            key_file: Path) -> None:
    source, reference = study
    remount(disk, "size=64m")
    out = disk / "out"
    out.mkdir()
    remount(disk, "ro")
    result = deid(*_args(source, out, tmp_path, key_file))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot write into the output folder {out}: it is read-only" in result.stderr
    assert "Mount it read-write" in result.stderr and "run the same command again" in result.stderr

    remount(disk, "rw")
    again = deid(*_args(source, out, tmp_path, key_file))
    assert again.returncode == 0, again.stderr
    assert tree(out) == reference


def test_a_full_records_disk_exits_2_naming_the_records(disk: Path, tmp_path: Path, study,
                                                       key_file: Path) -> None:
    source, reference = study
    filler = disk / "filler"
    filler.write_bytes(b"\0" * ((1 << 20) - (16 << 10)))  # 16 KiB left: the audit lines fill it
    records = disk / "records"
    args = run_args(source, tmp_path / "out", key_file, "--records", records)
    result = deid(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"the records folder {records}" in result.stderr and "the disk is full" in result.stderr

    filler.unlink()
    remount(disk, "size=64m")
    again = deid(*args)
    assert again.returncode == 0, again.stderr
    assert tree(tmp_path / "out") == reference
