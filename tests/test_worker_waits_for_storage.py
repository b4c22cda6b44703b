"""A node worker whose file system refuses writes: it gives its item back untouched, pauses
(doubling, capped), logs once, and carries on by itself when writes succeed again."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from servers import free_port
from smalldisk import fill, small_disk
from structlog.testing import capture_logs

from deid import logs
from deid.service import Worker
from deid.settings import AllowedCaller, DestinationSettings, ServeSettings
from deid.spool import DISK_FULL, Spool, StorageUnavailable
from deid.storage_wait import (
    STORAGE_FIRST_WAIT,
    STORAGE_LOG_SECONDS,
    STORAGE_MAX_WAIT,
    StorageWait,
    WorkerHealth,
)
from deid.synthetic.many import write_many_ct_slices

WAITING = "storage refuses writes; waiting (nothing is lost: the object stays in the spool)"
RESUMING = "storage takes writes again; resuming"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pauses_double_up_to_a_cap_and_the_log_is_rate_limited() -> None:
    clock = _Clock()
    health = WorkerHealth(multiprocessing.get_context("spawn"), 2)
    wait = StorageWait(logs.get_logger("test"), health.slot(1), clock)
    full = StorageUnavailable(DISK_FULL, "spool database")
    with capture_logs() as lines:
        pauses = []
        for _ in range(10):
            pauses.append(wait.refused(full))
            clock.now += pauses[-1]
        assert health.waiting() == [DISK_FULL] and health.refusals() == 10
        clock.now += STORAGE_LOG_SECONDS  # still refused a minute later: one more line
        wait.refused(full)
        wait.succeeded()
        assert health.waiting() == []
        wait.refused(full)  # a short relapse right after: no new line, no "resuming"
        wait.succeeded()
    assert pauses[:6] == [STORAGE_FIRST_WAIT * 2**n for n in range(6)]
    assert pauses[6:] == [STORAGE_MAX_WAIT] * 4
    assert [line["event"] for line in lines] == [WAITING, WAITING, RESUMING]
    assert lines[0]["error_type"] == "disk full" and lines[0]["code"] == "storage-unavailable"
    assert lines[1]["seconds"] > STORAGE_LOG_SECONDS


class _Script:
    """Worker.run's stop event, scripted (no threads, no clock): records each pause, frees the disk
    after ``refusals`` pauses, and stops once every item waits for the (absent) destination."""

    def __init__(self, spool: Spool, ballast: Path, refusals: int, items: int) -> None:
        self.spool = spool
        self.ballast = ballast
        self.refusals = refusals
        self.items = items
        self.pauses: list[float] = []
        self.while_full: list[dict] = []
        self.done = False

    def is_set(self) -> bool:
        return self.done

    def wait(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        if self.ballast.exists():
            self.while_full.append(dict(self.spool.stats()))
            if len(self.pauses) == self.refusals:
                self.ballast.unlink()
        self.done = self.spool.stats()["retrying"] == self.items or len(self.pauses) > 1000
        return self.done


def test_a_worker_whose_write_is_refused_gives_the_item_back_and_resumes(
    tmp_path: Path, key_file: Path
) -> None:
    settings = ServeSettings(
        data=tmp_path / "data",
        key_file=key_file,
        allow=(AllowedCaller("SENDER"),),
        destinations=(DestinationSettings("DEST", "127.0.0.1", free_port(), "DEID"),),  # nobody
        workers=1,
    )
    files = write_many_ct_slices(tmp_path / "in", 3, size=16)
    spool = Spool(settings.spool)
    for path in files:
        spool.put(path.read_bytes())
    health = WorkerHealth(multiprocessing.get_context("spawn"), 1)
    # the spool takes writes (claims succeed); the worker's records (audit lines) hit a full disk
    with small_disk(settings.records, size_mb=1) as records:
        with capture_logs() as lines:
            worker = Worker(settings, "w0", StorageWait(logs.get_logger("t"), health.slot(0)))
            script = _Script(spool, fill(records), refusals=5, items=len(files))
            worker.run(script)
        refusals = health.refusals()
    rows = spool.conn.execute("SELECT state, attempts, crashes FROM items").fetchall()
    events = [line["event"] for line in lines if line["event"] in (WAITING, RESUMING)]

    assert script.pauses[:5] == [STORAGE_FIRST_WAIT * 2**n for n in range(5)]
    assert refusals == 5 and health.waiting() == []
    # each refused attempt gave the item back at once: nothing claimed, nothing counted
    assert all(
        (s["queued"], s["in_progress"], s["retried"]) == (3, 0, 0) for s in script.while_full
    )
    assert events == [WAITING, RESUMING]
    waiting = next(line for line in lines if line["event"] == WAITING)
    # the first refused write of an object: the released index's database (deid.released)
    assert (waiting["error_type"], waiting["stage"]) == ("disk full", "spool database")
    # then it carried on: each object de-identified once, waiting for its destination
    assert rows == [("retry", 1, 0)] * 3
    assert not settings.quarantine.exists() or list(settings.quarantine.iterdir()) == []
    assert spool.stats()["processed"] == 3
