"""The durable spool: put, claim with a lease, ack, retry, quarantine, recovery, stats."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deid.spool import DB_NAME, Spool, SpoolError, connect, read_stats


def test_put_is_durable_and_queued_in_wal_mode(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(b"first")
    conn = connect(tmp_path / "spool" / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    (path,) = list((tmp_path / "spool" / "incoming").iterdir())
    assert path.read_bytes() == b"first" and path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    stats = spool.stats()
    assert stats["received"] == 1 and stats["depth"] == 1 and stats["queued"] == 1


def test_claim_ack_releases_the_original(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"a")
    spool.put(b"b")
    first = spool.claim("w1")
    second = spool.claim("w2")
    assert first and second and first.id != second.id
    assert spool.claim("w3") is None  # both leased
    assert first.path.read_bytes() == b"a"
    spool.ack(first)
    assert not first.path.exists()
    stats = spool.stats()
    assert stats["forwarded"] == 1 and stats["depth"] == 1 and stats["in_progress"] == 1


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
    assert not item.path.exists()
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
    names = set()
    while (item := spool.claim("new")) is not None:
        names.add(item.path.read_bytes())
    assert names == {b"claimed", b"orphan"}
    stats = spool.stats()
    assert stats["lost"] == 1 and stats["received"] == 4


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
