"""The durable spool: put, claim with a lease, ack, retry, quarantine, recovery, stats, and a
file system that refuses writes (a real full tmpfs, and a refused commit)."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path

import pytest
from smalldisk import fill, small_disk

from deid.spool import (
    DB_NAME,
    MIB,
    SLOT_IDLE_SECONDS,
    SLOT_MAKER_IDLE_SECONDS,
    TRIM_SECONDS,
    Item,
    Spool,
    SpoolError,
    StorageUnavailable,
    connect,
    read_stats,
    storage_failure,
    storage_status,
)
from deid.spool_slots import slot_object


def _holds(spool: Spool, item: Item, conn: sqlite3.Connection | None = None) -> bool:
    """Whether the item's slot is still taken by its object (not free for another put), as
    ``conn`` (default: the spool's own connection) sees it."""
    row = (conn or spool.conn).execute(
        "SELECT token FROM slots WHERE name = ?", (item.path.name,)
    ).fetchone()
    return row is not None and row[0] == item.token


def _payload(path: Path) -> bytes:
    held = slot_object(path)
    assert held is not None, path
    return held[1]


def test_put_is_durable_and_queued_in_wal_mode(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(b"first")
    conn = connect(tmp_path / "spool" / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    (path,) = list((tmp_path / "spool" / "incoming").iterdir())
    assert _payload(path) == b"first" and path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    stats = spool.stats()
    assert stats["received"] == 1 and stats["depth"] == 1 and stats["queued"] == 1


def test_the_spool_database_and_its_sqlite_side_files_are_owner_only(
        tmp_path: Path, usual_umask: None) -> None:
    """The spool's rows name originals and their states: its database, -wal and -shm are 0600
    from their creation (SQLite gives the side files the database file's mode), while the
    spool is open and after it was opened again."""
    for _ in range(2):
        spool = Spool(tmp_path / "spool", min_free_bytes=MIB)
        spool.put(b"first")
        spool.claim("w")
        paths = [tmp_path / "spool", *(tmp_path / "spool").rglob("*")]
        names = {path.name for path in paths}
        assert {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"} <= names
        for path in paths:
            assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
        spool.close()


def test_an_object_put_in_parts_is_one_file_in_order(tmp_path: Path) -> None:
    """The receiver puts the file meta it encodes and the received data set (a view, not
    copied) as two parts: the spool file is their bytes in order; empty parts are nothing."""
    spool = Spool(tmp_path / "spool")
    data_set = bytearray(b"\x08\x00" * 300_000)
    with memoryview(data_set) as view:
        spool.put(b"\x00" * 128 + b"DICM", b"", view)
    (path,) = list((tmp_path / "spool" / "incoming").iterdir())
    assert _payload(path) == b"\x00" * 128 + b"DICM" + bytes(data_set)
    item = spool.claim("w")
    assert item is not None and spool.read(item) == _payload(path)


def test_claim_ack_frees_the_originals_slot(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    spool.put(b"b")
    first = spool.claim("w1")
    second = spool.claim("w2")
    assert first and second and first.id != second.id
    assert spool.claim("w3") is None  # both leased
    assert spool.read(first) == b"a" and _holds(spool, first)
    spool.ack(first)
    assert not _holds(spool, first)
    spool.put(b"c")  # into the slot ack freed
    assert len(list((tmp_path / "incoming").iterdir())) == 2
    stats = spool.stats()
    assert stats["forwarded"] == 1 and stats["depth"] == 2 and stats["in_progress"] == 1


def test_retry_waits_with_doubling_backoff(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    item = spool.claim("w")
    assert spool.retry(
        item, "destination-unavailable", first_delay=0.2, max_delay=10
    ) == pytest.approx(0.2)
    assert spool.claim("w") is None and spool.stats()["retrying"] == 1
    time.sleep(0.25)
    item = spool.claim("w")
    assert item is not None and item.attempts == 1
    assert spool.retry(
        item, "destination-unavailable", first_delay=0.2, max_delay=10
    ) == pytest.approx(0.4)
    item = spool.claim("w") or (time.sleep(0.45), spool.claim("w"))[1]
    assert spool.retry(item, "x", first_delay=0.2, max_delay=0.5) == pytest.approx(0.5)  # capped


def test_sent_destinations_are_remembered(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    item = spool.mark_sent(spool.claim("w"), "A@h:1")
    spool.retry(item, "destination-unavailable", first_delay=0.01, max_delay=0.01)
    time.sleep(0.02)
    assert Spool(tmp_path).claim("w").sent == ("A@h:1",)


def test_quarantine_finishes_the_item(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    item = spool.claim("w")
    spool.quarantine(item, "unreadable")
    assert not _holds(spool, item)
    assert spool.stats()["quarantined"] == 1 and spool.stats()["depth"] == 0


def test_expired_lease_is_claimed_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    assert spool.claim("dead", lease=0.05) is not None
    assert spool.claim("alive") is None
    time.sleep(0.1)
    assert spool.claim("alive") is not None


def test_recover_after_a_crash(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for data in (b"claimed", b"gone", b"done"):
        spool.put(data)
    _claimed, gone, done = spool.claim("w"), spool.claim("w"), spool.claim("w")
    spool.conn.execute(
        "UPDATE items SET state = 'done', finished = ? WHERE id = ?", (time.time(), done.id)
    )
    gone.path.unlink()  # a row without its file
    (tmp_path / "incoming" / "abc123.dcm").write_bytes(b"orphan")  # a file without its row
    (tmp_path / "incoming" / ".x.dcm.partial").write_bytes(b"half")  # never answered success
    spool.close()

    spool = Spool(tmp_path)
    report = spool.recover()
    assert report["released"] == 2 and report["requeued_files"] == 1 and report["lost"] == 1
    assert not done.path.exists() and not (tmp_path / "incoming" / ".x.dcm.partial").exists()
    assert not spool.conn.execute(  # the slot whose file is gone is forgotten
        "SELECT 1 FROM slots WHERE name = ?", (gone.path.name,)).fetchall()
    names = set()
    while (item := spool.claim("new")) is not None:
        names.add(spool.read(item))
    assert names == {b"claimed", b"orphan"}
    stats = spool.stats()
    assert stats["lost"] == 1 and stats["received"] == 4


def test_an_object_answered_success_outlives_the_loss_of_its_unsynced_row(tmp_path: Path) -> None:
    """A new item's row and a claim are committed without a sync of their own: a power cut may
    undo them (here: the row deleted, the claim set back), never the object's file."""
    spool = Spool(tmp_path)
    assert spool.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: acks, retries
    assert spool.unsynced.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    spool.put(b"claimed")
    spool.put(b"answered")
    first = spool.claim("w")  # the older one
    assert first is not None
    spool.conn.execute("DELETE FROM items WHERE id != ?", (first.id,))  # the unsynced row lost
    spool.conn.execute("UPDATE items SET state = 'queued' WHERE id = ?", (first.id,))  # and claim
    spool.close()

    spool = Spool(tmp_path)
    report = spool.recover()
    assert report["requeued_files"] == 1 and report["lost"] == 0
    found = set()
    while (item := spool.claim("new")) is not None:
        found.add(spool.read(item))
        spool.ack(item, processed=True)
    assert found == {b"claimed", b"answered"}
    assert spool.trim(keep=0) == 2 and not list((tmp_path / "incoming").iterdir())


def test_put_refuses_when_the_disk_is_nearly_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path, min_free_bytes=1 << 60)
    with pytest.raises(SpoolError):
        spool.put(b"a")
    assert spool.stats()["received"] == 0
    assert list((tmp_path / "incoming").iterdir()) == []


def test_status_reads_the_data_folder(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(b"a")
    time.sleep(0.05)
    stats = read_stats(tmp_path)
    assert stats["depth"] == 1 and stats["oldest_age_seconds"] > 0


def test_a_dead_workers_items_are_queued_again_with_the_crash_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    assert spool.claim("w1").crashes == 0
    assert spool.release_worker("w1") == 1
    item = spool.claim("w2")
    assert item is not None and item.crashes == 1 and item.attempts == 0


def test_a_dead_workers_crash_counts_against_the_item_it_claimed_last(tmp_path: Path) -> None:
    """A worker holds the items of its batch (done, not yet committed) and the one it works on:
    only that one, claimed last, may be what killed it."""
    spool = Spool(tmp_path)
    for data in (b"a", b"b", b"c"):
        spool.put(data)
    first, last = spool.claim("w1"), spool.claim("w1")
    assert first is not None and last is not None
    assert spool.release_worker("w1") == 2
    crashes = dict(spool.conn.execute("SELECT id, crashes FROM items"))
    assert crashes == {first.id: 0, last.id: 1, 3: 0}


def test_releases_together_share_one_commit(tmp_path: Path) -> None:
    """A worker's batch: ack, retry, quarantine and mark_sent inside ``together`` are committed at
    its end, at once; the originals of finished items go only after that commit."""
    spool = Spool(tmp_path)
    for data in (b"a", b"b", b"c"):
        spool.put(data)
    a, b, c = (spool.claim("w") for _ in range(3))
    assert a is not None and b is not None and c is not None
    other = connect(tmp_path / DB_NAME)

    def states() -> list[str]:
        return [state for (state,) in other.execute("SELECT state FROM items ORDER BY id")]

    with spool.together():
        spool.mark_sent(a, "A")
        spool.ack(a, processed=True)
        spool.retry(b, "destination-busy", first_delay=1, max_delay=10)
        spool.quarantine(c, "forward-rejected")
        assert states() == ["claimed", "claimed", "claimed"]  # not committed yet
        assert _holds(spool, a, other) and _holds(spool, c, other)  # nor the slots freed
    assert states() == ["done", "retry", "quarantined"]
    assert not _holds(spool, a) and _holds(spool, b) and not _holds(spool, c)
    assert spool.stats()["forwarded"] == 1 and spool.stats()["quarantined"] == 1


def test_releases_together_change_nothing_when_one_fails(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    item = spool.claim("w")
    assert item is not None
    with pytest.raises(RuntimeError), spool.together():
        spool.ack(item)
        raise RuntimeError("the next release failed")
    state, = spool.conn.execute("SELECT state FROM items").fetchone()
    assert state == "claimed" and _holds(spool, item) and spool.stats()["forwarded"] == 0
    spool.ack(item)  # the connection is usable; outside together, an ack commits at once
    assert not _holds(spool, item)


def _counts(spool: Spool) -> tuple[int, ...]:
    stats = spool.stats()
    names = ("received", "depth", "queued", "in_progress", "retrying", "retried", "forwarded")
    return tuple(int(stats[name]) for name in names)


def test_a_full_disk_refuses_writes_changes_nothing_and_passes(tmp_path: Path) -> None:
    """On a real full file system every write raises StorageUnavailable and leaves the queue as it
    was; once space is back the same handle carries on (no transaction left open)."""
    with small_disk(tmp_path / "disk", size_mb=2) as disk:
        spool = Spool(disk / "data" / "spool", min_free_bytes=0)
        for data in (b"a", b"b", b"c"):
            spool.put(data)
        first = spool.claim("w")
        spool.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no room left in the WAL either
        before = _counts(spool)
        ballast = fill(disk)

        with pytest.raises(StorageUnavailable) as refused:
            spool.claim("w")
        assert refused.value.kind == "disk full"
        for write in (
            lambda: spool.put(b"d"),
            lambda: spool.ack(first),
            lambda: spool.retry(first, "destination-unavailable", first_delay=1, max_delay=1),
            lambda: spool.release(first),
            lambda: spool.release_worker("w"),
        ):
            with pytest.raises(StorageUnavailable):
                write()
        assert _counts(spool) == before and _holds(spool, first)
        assert [
            p.name
            for p in (disk / "data" / "spool" / "incoming").iterdir()
            if p.name.startswith(".")
        ] == []  # no half-written file of the refused put
        status = read_stats(disk / "data")
        assert status["storage_unavailable"] == 1 and status["disk_free_bytes"] == 0
        assert status["storage"] == "spool disk full: 0 MiB free"

        ballast.unlink()
        spool.release(first)  # given back untouched: no attempt, no crash counted
        items = [spool.claim("w") for _ in range(3)]
        assert {spool.read(item) for item in items if item} == {b"a", b"b", b"c"}
        assert all(item and item.attempts == 0 and item.crashes == 0 for item in items)
        for item in items:
            spool.ack(item)
        assert spool.stats()["forwarded"] == 3 and spool.stats()["depth"] == 0
        assert read_stats(disk / "data")["storage"] == "ok"
        spool.close()


def test_a_node_that_cannot_write_its_spool_does_not_start_half(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size_mb=1) as disk:
        fill(disk)
        with pytest.raises(StorageUnavailable):
            Spool(disk / "spool")


class _RefusingConnection:
    """A connection whose next ``COMMIT`` is refused as SQLite refuses it on a full disk (the
    statements before it did run: the transaction is still open)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.refuse = 1

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT" and self.refuse:
            self.refuse -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


def test_a_refused_commit_is_rolled_back_and_the_connection_stays_usable(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    real = spool.unsynced  # a claim commits on the spool's unsynced connection
    spool.unsynced = _RefusingConnection(real)  # type: ignore[assignment]
    with pytest.raises(StorageUnavailable) as refused:
        spool.claim("w")
    assert refused.value.kind == "disk full" and not real.in_transaction
    other = Spool(tmp_path)
    assert other.stats()["queued"] == 1  # the claim did not happen
    item = spool.claim("w")  # the same handle goes on
    assert item is not None and item.attempts == 0
    spool.ack(item)
    assert other.stats()["forwarded"] == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "disk full"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk full"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only"),
        (OSError(errno.EIO, "Input/output error"), "I/O error"),
        (sqlite3.OperationalError("database or disk is full"), "disk full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.OperationalError("disk I/O error"), "I/O error"),
        (OSError(errno.EACCES, "Permission denied"), None),
        (sqlite3.OperationalError("no such table: items"), None),
        (ValueError("a bug"), None),
    ],
)
def test_what_counts_as_storage_refusing_writes(error: Exception, kind: str | None) -> None:
    failure = storage_failure(error)
    assert (failure.kind if failure else None) == kind
    try:  # also when it is the cause of another error
        raise RuntimeError("while writing") from error
    except RuntimeError as wrapped:
        failure = storage_failure(wrapped)
    assert (failure.kind if failure else None) == kind


def test_storage_status_says_what_is_wrong(tmp_path: Path) -> None:
    assert storage_status(tmp_path, 0).problem is None
    status = storage_status(tmp_path, 1 << 60)
    assert status.problem is not None and status.problem.startswith("spool disk full: ")
    assert status.problem.endswith(f"needs {(1 << 60) // MIB} MiB")
    assert status.as_stats()["storage_unavailable"] == 1


def test_status_knows_the_nodes_minimum_of_free_space(tmp_path: Path) -> None:
    Spool(tmp_path / "spool", min_free_bytes=1 << 60).close()
    Spool(tmp_path / "spool").close()  # a worker's handle does not change it
    stats = read_stats(tmp_path)
    assert stats["disk_min_free_bytes"] == 1 << 60 and stats["storage_unavailable"] == 1
    Spool(tmp_path / "spool", min_free_bytes=0).close()
    assert read_stats(tmp_path)["storage"] == "ok"


#: the items table of a spool made before slots (one file per object, named by its row)
_OLD_ITEMS = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, state TEXT NOT NULL, received REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, crashes INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0, lease_until REAL, worker TEXT, sent TEXT NOT NULL DEFAULT '[]',
    reason TEXT, finished REAL
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters VALUES ('received', 3);
INSERT INTO items (name, state, received) VALUES ('aa.dcm', 'claimed', 1), ('bb.dcm', 'retry', 2);
INSERT INTO items (name, state, received, finished) VALUES ('cc.dcm', 'done', 3, 4);
"""


def test_a_spool_of_files_from_before_slots_is_read_forwarded_and_finished(tmp_path: Path) -> None:
    """After an upgrade, the files and rows an older deid left are recovered, read and finished
    as before (their files deleted), while new objects go into slots beside them."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.executescript(_OLD_ITEMS)
    conn.close()
    for name in ("aa", "bb", "cc", "dd"):  # dd: whole, its row never written
        (incoming / f"{name}.dcm").write_bytes(name.encode())
    spool = Spool(tmp_path, min_free_bytes=0)
    report = spool.recover()
    assert report["requeued_files"] == 1 and report["removed_files"] == 1  # dd queued, cc gone
    spool.put(b"new")
    spool.conn.execute("UPDATE items SET next_at = 0")
    found = {}
    while (item := spool.claim("w")) is not None:
        found[spool.read(item)] = item
    assert set(found) == {b"aa", b"bb", b"dd", b"new"}
    assert found[b"new"].token is not None and found[b"aa"].token is None
    with spool.together():
        for item in found.values():
            spool.ack(item)
    assert [p.suffix for p in incoming.iterdir()] == [".slot"]  # the old files deleted
    assert spool.stats()["forwarded"] == 4 and spool.stats()["depth"] == 0
    spool.close()
    assert list(incoming.iterdir()) == []


def test_a_damaged_slot_is_unreadable_not_another_object(tmp_path: Path) -> None:
    """A read checks the slot holds its item's object whole (OSError otherwise: the worker
    retries it as spool-unreadable)."""
    spool = Spool(tmp_path)
    spool.put(b"a" * 1000)
    item = spool.claim("w")
    assert item is not None
    with item.path.open("r+b") as handle:
        handle.seek(500)
        handle.write(b"b")
    with pytest.raises(OSError):
        spool.read(item)


def test_free_slots_are_reused_then_deleted_once_unused_a_while(tmp_path: Path) -> None:
    """A put reuses the slot a finish freed (no new file); free slots unused for
    SLOT_IDLE_SECONDS, and beyond the recent puts, are deleted; taken ones never."""
    spool = Spool(tmp_path)
    for data in (b"a", b"b", b"c"):
        spool.put(data)
    items = [spool.claim("w") for _ in range(3)]
    with spool.together():
        for item in items[:2]:
            spool.ack(item)
    slots = set((tmp_path / "incoming").iterdir())
    spool.put(b"d")
    assert set((tmp_path / "incoming").iterdir()) == slots  # into a freed slot
    assert spool.trim() == 0  # one free slot, freed just now
    spool.conn.execute("UPDATE slots SET used = used - ?", (SLOT_IDLE_SECONDS + 1,))
    assert spool.trim() == 1  # the free one; the two holding c and d stay
    assert spool.read(items[2]) == b"c" and len(list((tmp_path / "incoming").iterdir())) == 2
    spool.ack(items[2])
    assert spool.trim(keep=1) == 0 and spool.trim(keep=0) == 1


def test_tidy_looks_at_most_once_a_while(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    spool.ack(spool.claim("w"))
    assert spool.tidy() == 0  # not yet: a minute after the handle was opened
    spool._next_trim = 0  # (a minute later)
    assert spool.tidy() == 0  # the free slot was used just now, and one put came in the period
    spool._next_trim = 0
    spool._puts.clear()  # (no put for a while)
    assert spool.tidy() == 1 and spool.tidy() == 0


def test_a_new_or_grown_slot_is_written_to_its_end_so_a_reuse_syncs_data_alone(
        tmp_path: Path) -> None:
    """Space only allocated (posix_fallocate) is unwritten: a later object reaching into it would
    make its fdatasync commit the extents' conversion.  A slot is written to its end when made or
    grown; SEEK_HOLE (which reports unwritten space as a hole on ext4 and XFS) finds none."""
    spool = Spool(tmp_path)
    for size in (1000, 200_000):  # a new slot, then the same one grown
        spool.put(b"x" * size)
        item = spool.claim("w")
        spool.ack(item)
        fd = os.open(item.path, os.O_RDONLY)
        try:
            end = os.fstat(fd).st_size
            assert end >= size and os.lseek(fd, 0, os.SEEK_HOLE) == end
        finally:
            os.close(fd)
    assert len(list((tmp_path / "incoming").iterdir())) == 1


def test_the_recent_puts_are_counted_not_kept_one_by_one(tmp_path: Path) -> None:
    """A node puts ~100,000 objects in SLOT_IDLE_SECONDS: what it keeps of them for tidy is a
    count per TRIM_SECONDS, and the count is what tidy keeps free slots for."""
    spool = Spool(tmp_path)
    for n in range(40):
        spool.put(b"x%d" % n)
    assert len(spool._puts) <= 2 and sum(n for _period, n in spool._puts) == 40
    items = [spool.claim("w") for _ in range(40)]
    with spool.together():
        for item in items:
            spool.ack(item)
    spool.conn.execute("UPDATE slots SET used = used - 1")
    spool._next_trim = 0
    assert spool.tidy() == 0  # 40 free slots, 40 puts in the period: all kept
    spool._puts.clear()
    spool._puts.append([int(time.time() // TRIM_SECONDS), 10])  # (10 puts in the period)
    spool._next_trim = 0
    assert spool.tidy() == 30


def test_a_worker_whose_lease_expired_never_reads_nor_frees_the_next_object(
        tmp_path: Path) -> None:
    """A slow worker's item was claimed again, finished and its slot reused: the slow worker's
    read is refused (not another patient's object) and its finish leaves the new object's slot
    taken."""
    spool = Spool(tmp_path)
    spool.put(b"first")
    slow = spool.claim("slow", lease=0.01)
    time.sleep(0.02)
    again = spool.claim("fast")
    assert slow is not None and again is not None and again.id == slow.id
    spool.ack(again)
    spool.put(b"second")
    (newer,) = [item for item in (spool.claim("w"),) if item is not None]
    assert newer.path == slow.path  # the same slot
    with pytest.raises(OSError):
        spool.read(slow)
    spool.ack(slow)
    assert _holds(spool, newer) and spool.read(newer) == b"second"


def test_puts_from_many_threads_each_get_their_own_slot(tmp_path: Path) -> None:
    """The receiver's association threads put at once: every object is kept whole, once."""
    import threading

    spool = Spool(tmp_path)
    objects = {bytes([n]) * (1000 + n) for n in range(40)}
    threads = [threading.Thread(target=spool.put, args=(data,)) for data in objects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = []
    while (item := spool.claim("w")) is not None:
        items.append(item)
    assert sorted(spool.read(item) for item in items) == sorted(objects)
    with spool.together():
        for item in items[:20]:
            spool.ack(item)
    threads = [threading.Thread(target=spool.put, args=(b"again" * n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # the 20 freed ones reused; one more may be set aside for the next put (two for a moment:
    # two threads setting one aside at once, the second giving it back)
    assert 40 <= len(list((tmp_path / "incoming").iterdir())) <= 42
    found = [spool.read(item) for item in items[20:]]
    while (item := spool.claim("w")) is not None:
        found.append(spool.read(item))
    assert len(found) == 40


def test_a_put_the_disk_refuses_leaves_no_slot_taken(tmp_path: Path) -> None:
    """A new slot that cannot be allocated is deleted and nothing is queued."""
    with small_disk(tmp_path / "disk", size_mb=2) as disk:
        spool = Spool(disk / "spool", min_free_bytes=0)
        spool.put(b"a")
        with pytest.raises(StorageUnavailable):
            spool.put(b"x" * (4 * MIB))  # larger than the disk: no slot can hold it
        assert spool.stats()["received"] == 1
        assert len(list((disk / "spool" / "incoming").iterdir())) == 1
        assert spool.conn.execute("SELECT COUNT(*) FROM slots").fetchone()[0] == 1
        spool.close()


def test_a_write_into_the_slot_set_aside_commits_nothing_before_its_sync(tmp_path: Path) -> None:
    """The receiver answers once an object is written; a queue commit (after the answer) sets a
    free slot aside for the next write, which then goes straight to the disk: no commit of its
    own on the path the sender waits on."""
    spool = Spool(tmp_path, min_free_bytes=0)  # (the node's handle)
    spool.put(b"a" * 1000)
    spool.put(b"b" * 1000)
    items = [spool.claim("w") for _ in range(2)]
    with spool.together():
        for item in items:
            spool.ack(item)
    spool.put(b"c" * 1000)  # into one freed slot; the other is set aside
    slots = set((tmp_path / "incoming").iterdir())
    statements: list[str] = []
    for conn in (spool.conn, spool.unsynced):
        conn.set_trace_callback(statements.append)
    written = spool.write(b"d" * 900)
    assert statements == []
    item_id = spool.queue(written)
    assert set((tmp_path / "incoming").iterdir()) == slots  # into the slot set aside
    items = list(iter(lambda: spool.claim("w"), None))
    assert {spool.read(item) for item in items} == {b"c" * 1000, b"d" * 900}
    assert item_id in {item.id for item in items}
    with spool.together():
        for item in items:
            spool.ack(item)
    spool.put(b"e" * 1000)  # one freed slot taken, the other set aside
    spool.close()
    assert len(list((tmp_path / "incoming").iterdir())) == 1  # e's: the one set aside deleted


def test_an_object_answered_before_its_row_is_queued_whatever_the_disk_does(
    tmp_path: Path,
) -> None:
    """A row that cannot be committed after the answer (the disk filled meanwhile) waits: the
    next tidy queues it once there is room again, and a restart's recovery if the node stopped
    first."""
    with small_disk(tmp_path / "disk", size_mb=2) as disk:
        folder = disk / "spool"
        spool = Spool(folder, min_free_bytes=0)
        spool.put(b"x")
        spool.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no room left in the WAL either
        later = spool.write(b"answered later")
        stopped = spool.write(b"answered, then the node stopped")
        ballast = fill(disk)
        assert spool.queue_answered(later) == "StorageUnavailable"  # (the receiver logs it)
        assert spool.stats()["received"] == 1
        ballast.unlink()
        spool.tidy()
        assert spool.stats()["received"] == 2
        ballast = fill(disk)
        assert spool.queue_answered(stopped) is not None
        spool.close()
        ballast.unlink()

        spool = Spool(folder, min_free_bytes=0)
        assert spool.recover()["requeued_files"] == 1
        found = [spool.read(item) for item in iter(lambda: spool.claim("w"), None)]
        assert sorted(found) == [b"answered later", b"answered, then the node stopped", b"x"]
        spool.close()


def test_the_slot_for_the_next_object_is_made_after_the_answer_not_before_it(
        tmp_path: Path) -> None:
    """Making a slot (allocate, write to its end, sync it and its folder) takes several times a
    write into one.  Where no free slot fits, the receiver's queueing after an answer makes the
    next object's slot then: the next write, the one a sender waits on, goes straight into it."""
    spool = Spool(tmp_path, min_free_bytes=0)  # (the node's handle)
    spool.queue_answered(spool.write(b"a" * 100_000))  # no free slot: one made and set aside
    spool._to_make.join()  # (by the spool's own thread)
    slots = set((tmp_path / "incoming").iterdir())
    assert len(slots) == 2
    made: list[str] = []
    statements: list[str] = []
    for conn in (spool.conn, spool.unsynced):
        conn.set_trace_callback(statements.append)
    real_fsync = os.fsync
    try:
        os.fsync = lambda fd: made.append("fsync") or real_fsync(fd)  # type: ignore[assignment]
        written = spool.write(b"b" * 99_000)  # (a slice of the same series: the same size)
    finally:
        os.fsync = real_fsync  # type: ignore[assignment]
    assert statements == [] and made == []  # no commit, no slot made: one fdatasync
    assert set((tmp_path / "incoming").iterdir()) == slots
    spool.queue_answered(written)
    spool._to_make.join()
    assert len(list((tmp_path / "incoming").iterdir())) == 3  # the next one's, made just now
    deadline = time.monotonic() + 10 * SLOT_MAKER_IDLE_SECONDS
    while spool._slot_maker is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool._slot_maker is None  # the thread that made it ended once idle
    spool.close()  # (a crash here instead: the slot made ahead holds zeros, free at recovery)

    spool = Spool(tmp_path, min_free_bytes=0)
    assert spool.recover()["requeued_files"] == 0
    found = [spool.read(item) for item in iter(lambda: spool.claim("w"), None)]
    assert sorted(found) == [b"a" * 100_000, b"b" * 99_000]
    assert len(list((tmp_path / "incoming").iterdir())) == 2  # the free one deleted
    spool.close()


def test_a_slot_made_ahead_that_cannot_be_made_is_no_error(tmp_path: Path) -> None:
    """A slot made ahead is an optimisation: where the disk has no room for it, the object just
    answered stays queued and the next write makes its own slot (or says the disk is full)."""
    with small_disk(tmp_path / "disk", size_mb=2) as disk:
        spool = Spool(disk / "spool", min_free_bytes=0)
        spool.put(b"x")
        written = spool.write(b"y" * 600_000)
        ballast = fill(disk)
        os.truncate(ballast, ballast.stat().st_size - 256 * 1024)  # room for rows, not a slot
        spool.queue_answered(written)  # queued; no room for the next slot
        spool._to_make.join()
        assert spool.stats()["received"] == 2 and not spool._unqueued
        assert len(list((disk / "spool" / "incoming").iterdir())) == 2  # none half made
        with pytest.raises(StorageUnavailable):
            spool.write(b"z" * 600_000)
        ballast.unlink()
        spool.close()
