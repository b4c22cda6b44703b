"""The node's doorbell (deid.doorbell): the receiver rings it once it has queued an object, and an
idle worker waiting on it wakes then, not at its next look at the spool."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from deid.doorbell import Doorbell
from deid.intake.receiver import STATUS_SUCCESS, store_answer_first
from deid.spool import Spool


def test_a_ring_wakes_one_wait_and_is_heard_once() -> None:
    bell = Doorbell(multiprocessing.get_context("spawn"))
    assert bell.wait(0) is False  # nothing rang
    bell.ring()
    bell.ring()
    assert bell.wait(30) is True  # at once, both rings heard
    assert bell.wait(0) is False  # emptied: the caller looks at the spool next


def test_ringing_never_blocks_the_receiver() -> None:
    """A busy node queues objects faster than idle workers listen: a full pipe already wakes
    whoever waits, so a ring into it is dropped, never waited on."""
    bell = Doorbell(multiprocessing.get_context("spawn"))
    for _ in range(200_000):  # (a pipe holds 64 KiB)
        bell.ring()
    assert bell.wait(30) is True
    assert bell.wait(0) is False  # emptied whole


def _wait_and_report(bell: Doorbell, answers) -> None:
    answers.send(bell.wait(60))


def test_a_worker_process_wakes_when_the_node_rings() -> None:
    context = multiprocessing.get_context("spawn")  # (as the node starts its workers)
    bell = Doorbell(context)
    answers, report = context.Pipe(duplex=False)
    worker = context.Process(target=_wait_and_report, args=(bell, report))
    worker.start()
    try:
        bell.ring()
        assert answers.poll(60) and answers.recv() is True
    finally:
        worker.join(60)


def test_the_receiver_rings_once_the_objects_row_is_committed(tmp_path: Path) -> None:
    """A worker woken by the ring finds the object: the ring comes after its queue row."""
    spool = Spool(tmp_path, min_free_bytes=0)
    heard: list[int] = []
    status, then = store_answer_first(spool, {}, [b"an object"],
                                      ring=lambda: heard.append(spool.stats()["received"]))
    assert status == STATUS_SUCCESS and then is not None and heard == []
    then()  # (after the answer)
    assert heard == [1]
    spool.close()


def test_an_object_whose_row_waits_is_said_and_rings_no_one(tmp_path: Path) -> None:
    """The row refused after the answer (the spool's database fails): the object waits to be
    queued, a warning says so (the error's type, nothing of the object), and no worker is woken
    for a row that is not there."""
    from structlog.testing import capture_logs

    spool = Spool(tmp_path, min_free_bytes=0)
    heard: list[bool] = []
    status, then = store_answer_first(spool, {}, [b"an object"], ring=lambda: heard.append(True))
    assert status == STATUS_SUCCESS and then is not None

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    spool.queue = refuse  # type: ignore[method-assign]
    with capture_logs() as lines:
        then()
    assert heard == []
    assert [(line["code"], line["error_type"]) for line in lines] == [
        ("spool-unavailable", "OperationalError")]
    del spool.queue  # the database works again: the next tidy queues it
    spool.tidy()
    assert spool.stats()["received"] == 1
    spool.close()
