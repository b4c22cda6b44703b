"""Atomic writes: a file is either absent or whole, never partial, whatever fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support import to_bytes

from deid.io import writer
from deid.io.writer import write_bytes_atomic
from deid.pipeline import Pipeline


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_write_creates_folders_and_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.dcm"
    write_bytes_atomic(b"x" * 1000, target)
    assert target.read_bytes() == b"x" * 1000
    assert _listing(tmp_path) == ["a", "a/b", "a/b/c.dcm"]


def test_mode_is_applied(tmp_path: Path) -> None:
    target = tmp_path / "secret.json"
    write_bytes_atomic(b"{}", target, mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    def boom(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer.os, failing, boom)
    target = tmp_path / "out" / "x.dcm"
    with pytest.raises(OSError):
        write_bytes_atomic(b"y" * 4096, target)
    assert not target.exists()
    assert _listing(tmp_path) == ["out"]  # no temporary file left behind


def test_a_failed_rewrite_keeps_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.dcm"
    write_bytes_atomic(b"old" * 100, target)
    written: list[int] = []
    real_write = os.write

    def exploding(fd: int, data: bytes) -> int:
        """A write that fails half-way (a disk error)."""
        written.append(real_write(fd, bytes(data[: len(data) // 2])))
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patch:  # only around the write (pytest writes through os too)
        patch.setattr(writer.os, "write", exploding)
        with pytest.raises(OSError):
            write_bytes_atomic(b"new" * 100, target)
    assert written == [150]  # half of the new bytes reached a temporary file...
    assert target.read_bytes() == b"old" * 100  # ...which never replaced the old one
    assert _listing(tmp_path) == ["x.dcm"]


def test_pipeline_write_failure_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vghtpe, key,
                                                 patient) -> None:
    from deid.synthetic import four_phase_ct

    def boom(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    data = to_bytes(four_phase_ct(patient, slices=1, size=16)["P"][0])
    out = tmp_path / "out"
    monkeypatch.setattr(writer.os, "replace", boom)
    with pytest.raises(OSError):
        Pipeline(vghtpe, key, out=out, quarantine=tmp_path / "q").process_bytes(data)
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_a_runs_temp_files_are_named_by_its_run_id(tmp_path: Path) -> None:
    writer.set_temp_owner("0123456789ab")
    try:
        temp = writer.temp_path(tmp_path / "x.dcm")
    finally:
        writer.set_temp_owner("")
    assert temp.name == f".x.dcm.0123456789ab-{os.getpid()}.partial" and writer.RUN_TEMP.match(temp.name)
    assert writer.temp_path(tmp_path / "x.dcm").name == f".x.dcm.{os.getpid()}.partial"  # the node's


def test_the_folder_lock_refuses_a_second_holder_and_leaves_no_file(tmp_path: Path) -> None:
    lock = writer.FolderLock(tmp_path)
    with pytest.raises(writer.FolderLockedError):
        writer.FolderLock(tmp_path)
    lock.release()
    assert not (tmp_path / writer.OUTPUT_LOCK).exists()
    writer.FolderLock(tmp_path).release()  # free again


def test_a_batch_is_synced_per_file_system_not_machine_wide(tmp_path, monkeypatch) -> None:
    from deid.io import writer

    calls: list[int] = []
    real = writer._syncfs
    assert real is not None  # Linux with glibc: syncfs is there

    def counted(fd: int) -> int:
        calls.append(os.fstat(fd).st_dev)
        return real(fd)

    monkeypatch.setattr(writer, "_syncfs", counted)
    monkeypatch.setattr(writer.os, "sync", lambda: (_ for _ in ()).throw(AssertionError("os.sync")))
    (tmp_path / "out").mkdir()
    (tmp_path / "records").mkdir()
    writer.write_bytes_atomic(b"x" * 10, tmp_path / "out" / "a.dcm", durable=False)
    writer.sync_file_systems([tmp_path / "out", tmp_path / "records", Path("/dev/shm")])
    # one per file system: out and records share one, /dev/shm is another (tmpfs)
    assert len(calls) == len(set(calls)) == len({(tmp_path / "out").stat().st_dev,
                                                  Path("/dev/shm").stat().st_dev})
