"""An output folder as a destination (deid.folder_destination): released bytes written at the path
`deid run` gives them, the same bytes, on disk (file and folder synced) before the send answers
done, never half-written under their name; a folder that refuses the write is a retry, another
object under the same name is never overwritten."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from smalldisk import fill, small_disk
from support import deid, run_args, tree

from deid.folder_destination import FolderDestination, FolderForwarder, folder_destination
from deid.forward import DONE, FAILED, RETRY
from deid.keys import SecretKey
from deid.outcome import Written
from deid.pipeline import Pipeline
from deid.profile.model import Profile
from deid.sender import LocalSender, forwarder_for
from deid.settings import FolderDestinationSettings


def _released(files: list[Path], profile: Profile, key: SecretKey, scratch: Path) -> list[bytes]:
    """The released bytes of ``files`` as a node worker makes them (nothing written)."""
    pipeline = Pipeline(profile, key, out=scratch / "outgoing", quarantine=scratch / "quarantine",
                        durable=False)
    outcomes = [pipeline.deidentify_bytes(path.read_bytes()) for path in files]
    assert all(isinstance(outcome, Written) for outcome in outcomes)
    return [outcome.data for outcome in outcomes]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def run_release(tmp_path_factory: pytest.TempPathFactory, sample_study: Path,
                key_file: Path) -> dict[str, bytes]:
    """What `deid run` releases from the sample study: its .dcm files by relative path."""
    out = tmp_path_factory.mktemp("run") / "release"
    done = deid(*run_args(sample_study, out, key_file, "--profile", "vghtpe"))
    assert done.returncode == 0, done.stderr
    return {name: data for name, data in tree(out).items() if name.endswith(".dcm")}


def test_the_folder_gets_what_deid_run_releases_at_the_same_paths(
    tmp_path: Path, sample_study: Path, vghtpe: Profile, key: SecretKey,
    run_release: dict[str, bytes],
) -> None:
    files = sorted(sample_study.rglob("*.dcm"))
    folder = tmp_path / "release"
    with forwarder_for(FolderDestination(folder), timeout=5) as forwarder:
        assert isinstance(forwarder, FolderForwarder)
        for data in _released(files, vghtpe, key, tmp_path):
            assert forwarder.send_bytes(FolderDestination(folder), data).outcome == DONE
    assert tree(folder) == run_release  # the same paths, the same bytes, nothing else


def test_the_object_is_on_disk_before_the_send_answers_done(
    tmp_path: Path, sample_study: Path, vghtpe: Profile, key: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (data,) = _released(sorted(sample_study.rglob("*.dcm"))[:1], vghtpe, key, tmp_path)
    folder = tmp_path / "release"
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        real_fsync(fd)
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def replace(src: str | Path, dst: str | Path) -> None:
        assert not Path(dst).exists()  # nothing under the final name until it is whole and synced
        real_replace(src, dst)
        events.append(("rename", str(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    result = FolderForwarder().send_bytes(FolderDestination(folder), data)
    monkeypatch.undo()
    assert result.outcome == DONE
    (written,) = [p for p in folder.rglob("*") if p.is_file()]
    assert written.read_bytes() == data
    (temp_synced, renamed, folder_synced) = events
    assert temp_synced[0] == "fsync" and Path(temp_synced[1]).parent == written.parent
    assert Path(temp_synced[1]).name.endswith(".partial")  # the data synced before the rename
    assert renamed == ("rename", str(written))
    assert folder_synced == ("fsync", str(written.parent))  # the name synced before done


def test_a_write_the_folder_refuses_is_a_retry_and_leaves_nothing(
    tmp_path: Path, sample_study: Path, vghtpe: Profile, key: SecretKey,
) -> None:
    """A full disk (a real one: a small tmpfs): retry, naming the error's code, no path; no
    temp file and nothing under the object's name is left; once there is room it is written."""
    (data,) = _released(sorted(sample_study.rglob("*.dcm"))[:1], vghtpe, key, tmp_path)
    with small_disk(tmp_path / "disk", size_mb=1) as disk:
        folder = FolderDestination(disk / "release")
        ballast = fill(disk)
        result = FolderForwarder().send_bytes(folder, data)
        assert (result.outcome, result.status) == (RETRY, None)
        assert result.detail == "the output folder refused the write (ENOSPC)"
        assert not [p for p in (disk / "release").rglob("*") if p.is_file()]
        ballast.unlink()
        assert FolderForwarder().send_bytes(folder, data).outcome == DONE
        (written,) = [p for p in (disk / "release").rglob("*") if p.is_file()]
        assert written.read_bytes() == data


def test_a_file_in_the_folder_s_place_is_a_retry(tmp_path: Path, sample_study: Path,
                                                  vghtpe: Profile, key: SecretKey) -> None:
    (data,) = _released(sorted(sample_study.rglob("*.dcm"))[:1], vghtpe, key, tmp_path)
    (tmp_path / "release").write_bytes(b"")
    result = FolderForwarder().send_bytes(FolderDestination(tmp_path / "release"), data)
    assert result.outcome == RETRY
    assert result.detail == f"the output folder refused the write ({errno.errorcode[errno.ENOTDIR]})"


def test_another_object_under_the_same_name_is_never_overwritten(
    tmp_path: Path, sample_study: Path, vghtpe: Profile, key: SecretKey,
) -> None:
    (data,) = _released(sorted(sample_study.rglob("*.dcm"))[:1], vghtpe, key, tmp_path)
    folder = FolderDestination(tmp_path / "release")
    forwarder = FolderForwarder()
    assert forwarder.send_bytes(folder, data).outcome == DONE
    assert forwarder.send_bytes(folder, data).outcome == DONE  # the same object again (a retry)
    (written,) = [p for p in folder.path.rglob("*") if p.is_file()]
    written.write_bytes(b"another object")
    result = forwarder.send_bytes(folder, data)
    assert result.outcome == FAILED and "another object" in result.detail
    assert written.read_bytes() == b"another object"


def test_bytes_that_are_no_dicom_object_fail(tmp_path: Path) -> None:
    result = FolderForwarder().send_bytes(FolderDestination(tmp_path / "release"), b"not dicom")
    assert result.outcome == FAILED
    assert not (tmp_path / "release").exists()


def test_the_node_sends_to_a_folder_setting_by_its_name(
    tmp_path: Path, sample_study: Path, vghtpe: Profile, key: SecretKey,
) -> None:
    """The settings' folder destination becomes the folder writer (deid.service._destination,
    deid.sender.forwarder_for), named ``folder`` in the spool, the records and the metrics."""
    from deid.service import _destination

    setting = FolderDestinationSettings(tmp_path / "release")
    view = _destination(setting)
    assert view == folder_destination(setting) == FolderDestination(tmp_path / "release")
    assert str(view) == setting.name == "folder"
    (data,) = _released(sorted(sample_study.rglob("*.dcm"))[:1], vghtpe, key, tmp_path)
    sender = LocalSender({setting.name: view}, timeout=5)
    assert sender.send("folder", data).outcome == DONE
    sender.close()
    assert len([p for p in (tmp_path / "release").rglob("*.dcm")]) == 1
