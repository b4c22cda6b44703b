"""deid.released: one content per released SOP Instance UID, over processes and restarts."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
import sqlite3
from pathlib import Path

from typing import Any

import pytest
from blake3 import blake3
from support import to_bytes

from deid.digest import content_digest
from deid.pipeline import Pipeline
from deid.outcome import Quarantined, Written
from deid.released import DB_NAME, ReleasedIndex, ReleasedIndexError
from deid.synthetic import four_phase_ct


def _claim(index: ReleasedIndex, sop_uid: str, content: bytes, output: str) -> bool:
    """Claim ``sop_uid`` for ``content`` as the pipeline does (its digest, and its bytes)."""
    return index.claim(sop_uid, content_digest(content), output, lambda: content)


def test_the_first_content_holds_the_uid_and_the_same_content_matches_it(tmp_path: Path) -> None:
    index = ReleasedIndex(tmp_path / DB_NAME)
    assert _claim(index, "2.25.1", b"a", "p/s/e/2.25.1.dcm")
    assert _claim(index, "2.25.1", b"a", "p/s/e/2.25.1.dcm")  # a rerun, a retry
    assert not _claim(index, "2.25.1", b"b", "p/s/other/2.25.1.dcm")
    assert _claim(index, "2.25.2", b"b", "p/s/other/2.25.2.dcm")
    index.close()
    again = ReleasedIndex(tmp_path / DB_NAME, durable=False)  # a later run with the same records
    assert not _claim(again, "2.25.1", b"b", "p/s/other/2.25.1.dcm")
    assert _claim(again, "2.25.1", b"a", "p/s/e/2.25.1.dcm")
    assert (tmp_path / DB_NAME).stat().st_mode & 0o777 == 0o600


def _modes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}


def test_the_index_and_its_sqlite_side_files_are_owner_only_while_it_is_open(
        tmp_path: Path, usual_umask: None) -> None:
    """SQLite makes the -wal and -shm files (released UIDs) with the database file's mode: the
    index is 0600 before its first write, so they are 0600 from their creation."""
    index = ReleasedIndex(tmp_path / DB_NAME, durable=False)
    assert _claim(index, "2.25.1", b"a", "p/s/e/2.25.1.dcm")
    assert _modes(tmp_path) == {DB_NAME: 0o600, f"{DB_NAME}-wal": 0o600, f"{DB_NAME}-shm": 0o600}
    index.close()
    again = ReleasedIndex(tmp_path / DB_NAME)  # the last close removed them: made again
    assert _claim(again, "2.25.2", b"b", "p/s/e/2.25.2.dcm")
    assert _modes(tmp_path) == {DB_NAME: 0o600, f"{DB_NAME}-wal": 0o600, f"{DB_NAME}-shm": 0o600}
    again.close()


def test_side_files_an_older_version_left_readable_are_made_owner_only(
        tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / DB_NAME
    older = sqlite3.connect(path, isolation_level=None)  # made with the umask's mode, kept open
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE released (sop_uid TEXT PRIMARY KEY, sha256 TEXT NOT NULL, "
                  "output TEXT NOT NULL)")
    assert set(_modes(tmp_path).values()) == {0o644}
    index = ReleasedIndex(path)
    assert _claim(index, "2.25.1", b"a", "p/s/e/2.25.1.dcm")
    assert _modes(tmp_path) == {DB_NAME: 0o600, f"{DB_NAME}-wal": 0o600, f"{DB_NAME}-shm": 0o600}
    index.close()
    older.close()


def _claim_all(path: Path, content: bytes, start: Any, results: Any) -> None:
    index = ReleasedIndex(path, durable=False)
    start.wait()  # every process opens the new index and claims at once
    won = [_claim(index, f"2.25.{n}", content, f"{content!r}/{n}.dcm") for n in range(50)]
    results.put((content, won))


def test_claims_not_synced_each_are_made_durable_by_one_sync(tmp_path: Path,
                                                             monkeypatch) -> None:
    """The node's index (durable=False): claims are committed without a sync; ``sync`` makes them
    durable with one fsync of the write-ahead log (and, once, of its folder)."""
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def noting_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    index = ReleasedIndex(tmp_path / DB_NAME, durable=False)
    index.sync()  # nothing claimed yet: nothing to sync
    monkeypatch.setattr(os, "fsync", noting_fsync)
    for n in range(3):
        assert _claim(index, f"2.25.{n}", b"a", f"p/s/e/2.25.{n}.dcm")
    assert synced == []  # no claim synced by itself
    index.sync()
    assert synced == [f"{tmp_path / DB_NAME}-wal", str(tmp_path)]
    _claim(index, "2.25.9", b"a", "p/s/e/2.25.9.dcm")
    index.sync()
    assert synced[2:] == [f"{tmp_path / DB_NAME}-wal"]
    index.close()
    again = ReleasedIndex(tmp_path / DB_NAME)
    assert not _claim(again, "2.25.1", b"b", "p/s/e/2.25.1.dcm")
    again.close()


def test_racing_processes_never_both_win_a_uid(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(4), context.Queue()
    contents = [c * 64 for c in (b"a", b"b", b"c", b"d")]
    processes = [context.Process(target=_claim_all, args=(tmp_path / DB_NAME, c, start, results))
                 for c in contents]
    for process in processes:
        process.start()
    won = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    for n in range(50):
        assert sum(won[c][n] for c in contents) == 1
    index = ReleasedIndex(tmp_path / DB_NAME)
    winners = [next(c for c in contents if won[c][n]) for n in range(50)]
    assert all(_claim(index, f"2.25.{n}", winner, "") for n, winner in enumerate(winners))


def test_a_copy_for_another_process_carries_no_connection(tmp_path: Path) -> None:
    index = ReleasedIndex(tmp_path / DB_NAME)
    assert _claim(index, "2.25.1", b"a", "x")
    copy = pickle.loads(pickle.dumps(index))
    assert copy.path == index.path and copy.durable and not _claim(copy, "2.25.1", b"b", "y")


def test_an_index_that_cannot_be_written_is_an_os_error(tmp_path: Path) -> None:
    index = ReleasedIndex(tmp_path / "missing-folder" / DB_NAME)
    with pytest.raises(ReleasedIndexError) as error:
        _claim(index, "2.25.1", b"a", "x")
    assert isinstance(error.value, OSError) and "2.25.1" not in str(error.value)


def test_a_claim_without_its_write_lets_the_same_content_finish_and_nothing_else(
    tmp_path: Path, vghtpe, key, patient
) -> None:
    image = four_phase_ct(patient, slices=1, size=16)["P"][0]
    first = to_bytes(image)
    image.SeriesInstanceUID = image.SeriesInstanceUID + ".9"
    other = to_bytes(image)  # the same SOP Instance UID in another series

    def pipeline() -> Pipeline:
        return Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q",
                        released=ReleasedIndex(tmp_path / DB_NAME))

    done = pipeline().process_bytes(first)
    assert isinstance(done, Written)
    (tmp_path / "out" / done.released.output).unlink()  # killed after the claim, before the write
    refused = pipeline().process_bytes(other)
    assert isinstance(refused, Quarantined) and refused.code == "duplicate-instance"
    again = pipeline().process_bytes(first)
    assert isinstance(again, Written) and again.released.output == done.released.output
    assert [p.name for p in (tmp_path / "out").rglob("*.dcm")] == [Path(done.released.output).name]


def test_an_index_written_before_with_sha256_digests_still_knows_its_objects(tmp_path: Path) -> None:
    """An index whose rows hold the SHA-256 of what went out (the versions before deid.digest):
    the same content again matches its row, other content does not; new claims hold BLAKE3."""
    path = tmp_path / DB_NAME
    older = sqlite3.connect(path, isolation_level=None)
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE released (sop_uid TEXT PRIMARY KEY, sha256 TEXT NOT NULL, "
                  "output TEXT NOT NULL)")
    older.execute("INSERT INTO released VALUES (?, ?, ?)",
                  ("2.25.1", hashlib.sha256(b"released last year").hexdigest(), "p/s/e/2.25.1.dcm"))
    older.close()
    index = ReleasedIndex(path)
    assert _claim(index, "2.25.1", b"released last year", "p/s/e/2.25.1.dcm")
    assert not _claim(index, "2.25.1", b"other content", "p/s/e/2.25.1.dcm")
    assert _claim(index, "2.25.2", b"new", "p/s/e/2.25.2.dcm")
    index.close()
    rows = dict(sqlite3.connect(path).execute("SELECT sop_uid, sha256 FROM released"))
    assert rows["2.25.2"] == "blake3:" + blake3(b"new").hexdigest()


def test_an_index_digest_is_never_read_for_new_content(tmp_path: Path) -> None:
    """A new claim or a BLAKE3 row never reads the bytes again (only an older SHA-256 row does)."""
    index = ReleasedIndex(tmp_path / DB_NAME)

    def unread() -> bytes:
        raise AssertionError("read")

    assert index.claim("2.25.1", content_digest(b"x"), "o", unread)
    assert index.claim("2.25.1", content_digest(b"x"), "o", unread)
    assert not index.claim("2.25.1", content_digest(b"y"), "o", unread)
