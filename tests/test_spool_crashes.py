"""A process killed (SIGKILL) at each point of a put and of a worker's finish: after recovery
every object answered success is queued exactly once, nothing finished comes back, and a slot
torn mid-write holds nothing (real processes and files; no mocked file system)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deid.spool import Spool

#: the child: a put and a finish, then the put or worker step at ``point`` kills the process
CHILD = r"""
import os, signal, sys
from pathlib import Path
import deid.spool as spool_module
from deid.spool import Spool

folder, point = Path(sys.argv[1]), sys.argv[2]

def die(*_args):
    os.kill(os.getpid(), signal.SIGKILL)

spool = Spool(folder, min_free_bytes=0)
spool.put(b"finished")  # a slot made, filled ...
item = spool.claim("w")
spool.ack(item)  # ... and freed: the next put reuses it (its header still names this object)
answered = b"answered" * 1000
write, sync, allocate = spool_module.write_object, os.fdatasync, os.posix_fallocate
if point == "before-write":
    spool_module.write_object = die
elif point == "torn-write":
    def torn(fd, header, parts):
        os.pwrite(fd, header + bytes(parts[0][: len(parts[0]) // 2]), 0)
        os.fsync(fd)  # on disk as a crash left it: the header whole, half the object
        die()
    spool_module.write_object = torn
elif point == "after-sync":
    os.fdatasync = lambda fd: (sync(fd), die())
elif point == "after-row":
    spool_module.Spool._put_done = die
elif point == "growing":
    answered = b"answered" * 20_000  # larger than the free slot: it is grown
    os.posix_fallocate = lambda fd, offset, size: (allocate(fd, offset, size), die())
spool.put(answered)
if point == "put":
    sys.exit(0)
item = spool.claim("w")
if point == "reading":
    spool_module.read_object = lambda *args: die()
    spool.read(item)
with spool.together():
    spool.ack(item)
    if point == "before-ack-commit":
        die()
if point == "after-ack":
    die()
"""
ANSWERED = b"answered" * 1000

#: crash point -> the objects queued after recovery (exactly these, once each), and how many
#: objects the spool counts as received
CASES = {
    "before-write": ([], 1),  # never answered success: the reused slot is free
    "torn-write": ([], 1),  # never answered success: the slot's checksum fails, it is free
    "growing": ([], 1),  # the slot was being grown for it: free
    "after-sync": ([ANSWERED], 2),  # durable, its row never written: queued from the slot
    "after-row": ([ANSWERED], 2),  # answered success: queued by its row
    "reading": ([ANSWERED], 2),  # a worker died reading it: queued again, whole
    "before-ack-commit": ([ANSWERED], 2),  # its finish not committed: queued again
    "after-ack": ([], 2),  # finished: its slot's header still names it, never queued again
}


def _crash(folder: Path, point: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), point],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


def _drain(spool: Spool) -> list[bytes]:
    found = []
    while (item := spool.claim("after")) is not None:
        found.append(spool.read(item))
        spool.ack(item)
    return found


@pytest.mark.parametrize("point", list(CASES))
def test_a_crash_at_each_point_loses_and_duplicates_nothing(tmp_path: Path, point: str) -> None:
    _crash(tmp_path, point)
    spool = Spool(tmp_path, min_free_bytes=0)
    report = spool.recover()
    queued, received = CASES[point]
    assert report["lost"] == 0
    assert _drain(spool) == queued
    assert spool.stats()["received"] == received
    # once more: a second crash right after the recovery changes nothing
    spool.close()
    spool = Spool(tmp_path, min_free_bytes=0)
    spool.recover()
    assert _drain(spool) == []
    spool.close()
    assert list((tmp_path / "incoming").iterdir()) == []  # the node's close deletes free slots


def test_an_object_whose_row_was_lost_is_queued_once_however_often_it_recovers(
        tmp_path: Path) -> None:
    """A power cut after the answer may undo the unsynced row and the slot's reservation: the
    slot's whole object is queued at the first recovery, and not again at the next."""
    spool = Spool(tmp_path)
    spool.put(b"answered")
    spool.conn.execute("DELETE FROM items")
    spool.conn.execute("UPDATE slots SET token = NULL")
    spool.close()
    for expected in ([b"answered"], []):
        spool = Spool(tmp_path)
        spool.recover()
        assert _drain(spool) == expected
        spool.close()


def test_a_finished_object_is_not_queued_again_after_its_row_is_pruned(tmp_path: Path) -> None:
    """The slot's table keeps the token finished in it last: its valid header means nothing."""
    spool = Spool(tmp_path)
    spool.put(b"done")
    spool.ack(spool.claim("w"))
    spool.conn.execute("DELETE FROM items")  # pruned (a week later)
    (name,) = spool.conn.execute("SELECT name FROM slots").fetchone()
    spool.close()
    spool = Spool(tmp_path)
    assert spool.recover()["requeued_files"] == 0 and _drain(spool) == []
    assert not (tmp_path / "incoming" / name).exists()  # free: deleted at start-up
