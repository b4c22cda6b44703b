"""A node worker's paths, with its collaborators given (deid.service.Worker): an in-memory spool,
a scripted sender and records that note their calls, the real pipeline.  The order that keeps a
node fail-closed (record -> sync -> release the original) is checked on every path."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from memoryspool import MemorySpool

from deid import service
from deid.audit.record import event_of
from deid.forward import DONE, FAILED, RETRY, SendResult
from deid.pipeline import Pipeline
from deid.released import ReleasedIndex
from deid.sender import Pending
from deid.service import MAX_CRASHES, Worker
from deid.settings import AllowedCaller, DestinationSettings, ServeSettings
from deid.synthetic.many import write_many_ct_slices


class ScriptedSender:
    """Answers each send with the next result when the worker takes the answer (as a sender
    process does); keeps what it was given."""

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.sent: list[tuple[str, bytes]] = []
        self.unanswered: list[Pending] = []
        self.events: list[str] = []  # hand-overs and answers taken, in order

    def submit(self, destination: str, data: bytes) -> Pending:
        self.sent.append((destination, data))
        self.events.append(f"submit {destination}")
        handed = Pending(destination, data)
        self.unanswered.append(handed)
        return handed

    def result(self, handed: Pending) -> SendResult:
        self.unanswered.remove(handed)
        self.events.append(f"answer {handed.destination}")
        return self.results.pop(0)

    def close(self) -> None:
        pass


class StopFlag:
    """Never set (the worker runs until what it does ends it)."""

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float) -> bool:
        return False


class NotedRecords:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def record(self, outcome) -> None:
        self.calls.append(f"record {event_of(outcome)}")

    def flush(self) -> None:
        self.calls.append("sync")

    def close(self) -> None:
        pass


@pytest.fixture
def node(tmp_path: Path, key_file: Path, vghtpe, key):
    settings = ServeSettings(
        data=tmp_path / "data",
        key_file=key_file,
        allow=(AllowedCaller("SENDER"),),
        destinations=(DestinationSettings("DEST", "127.0.0.1", 1, "DEID"),),
        workers=1,
    )
    calls: list[str] = []
    spool = MemorySpool(calls)
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "unused", quarantine=settings.quarantine)
    original = write_many_ct_slices(tmp_path / "in", 1, size=16)[0].read_bytes()

    def worker(sender: ScriptedSender, records: type[NotedRecords] = NotedRecords,
               **given) -> Worker:
        return Worker(settings, "w0", sender=sender, pipeline=pipeline, spool=spool,
                      open_records=lambda: records(calls), **given)

    return settings, spool, calls, original, worker


def test_forwarded_is_recorded_and_synced_before_the_original_goes(node) -> None:
    _settings, spool, calls, original, worker = node
    spool.put(original)
    sender = ScriptedSender(SendResult(DONE, 0, "stored"))
    busy = worker(sender)
    assert busy.step() is True
    assert calls == ["claim 1", "record written"]  # handed over, the answer not yet taken
    assert spool.state[1] == "claimed" and len(sender.unanswered) == 1
    assert busy.step() is False  # nothing more due: answered, then the batch is settled
    assert sender.unanswered == []
    assert calls == ["claim 1", "record written", "record forwarded", "sync", "commit", "done 1"]
    (destination, released), = sender.sent
    assert destination == "DEST@127.0.0.1:1" and released[128:132] == b"DICM" and released != original
    assert spool.counts == {"processed": 1, "forwarded": 1, "quarantined": 0, "retried": 0}


def test_items_one_after_the_other_share_one_sync_and_one_commit(node, monkeypatch) -> None:
    """A batch ends when full (here 2) or when nothing more is due; each item's records are synced
    before the commit that releases it.  An item's send is answered once the next one is
    de-identified (its forwarded line comes after the next claim)."""
    monkeypatch.setattr(service, "BATCH", 2)
    _settings, spool, calls, original, worker = node
    for _ in range(3):
        spool.put(original)
    busy = worker(ScriptedSender(*[SendResult(DONE, 0, "stored")] * 3))
    while busy.step():
        pass
    written, forwarded = "record written", "record forwarded"
    assert calls == ["claim 1", written, "claim 2", forwarded, written,
                     "claim 3", forwarded, "sync", "commit", "done 1", "done 2",
                     written, forwarded, "sync", "commit", "done 3"]
    assert spool.counts == {"processed": 3, "forwarded": 3, "quarantined": 0, "retried": 0}


def test_a_refused_sync_gives_the_whole_batch_back(node) -> None:
    """The records' disk refuses the batch's sync: nothing of the batch is released, every item
    goes back to the queue untouched; once the disk takes writes they are done again."""
    _settings, spool, calls, original, worker = node
    full = [True]

    class FullDisk(NotedRecords):
        def flush(self) -> None:
            super().flush()
            if full[0]:
                raise OSError(errno.ENOSPC, "No space left on device")

    for _ in range(2):
        spool.put(original)
    busy = worker(ScriptedSender(*[SendResult(DONE, 0, "stored")] * 4), FullDisk)
    assert busy.step() and busy.step()
    with pytest.raises(OSError):
        busy.step()
    assert [c for c in calls if c.startswith(("release", "done"))] == ["release 1", "release 2"]
    assert spool.state == {1: "queued", 2: "queued"} and busy.batch.pending == []
    full[0] = False
    calls.clear()
    while busy.step():
        pass
    assert calls[-3:] == ["commit", "done 1", "done 2"]
    assert calls.count("record written") == 2  # done again: recorded again (never settled before)


def test_an_unreachable_destination_keeps_the_original_for_a_retry(node) -> None:
    settings, spool, calls, original, worker = node
    spool.put(original)
    sender = ScriptedSender(SendResult(RETRY, None, "cannot connect"), SendResult(DONE, 0, "ok"))
    busy = worker(sender)
    busy.step()
    busy.step()
    assert calls == ["claim 1", "record written", "record retrying", "sync", "commit", "retry 1"]
    assert spool.state[1] == "retry" and spool.reason[1] == "destination-unavailable"
    spool.due()
    busy.step()  # the destination was down a moment ago: deferred without work or a send
    busy.step()
    assert len(sender.sent) == 1 and spool.items[1].attempts == 2
    busy.down_until.clear()
    spool.due()
    calls.clear()
    busy.step()  # the same bytes again (deterministic), forwarded; "written" is not recorded twice
    busy.step()
    assert calls == ["claim 1", "record forwarded", "sync", "commit", "done 1"]
    assert sender.sent[0][1] == sender.sent[1][1]
    assert not settings.quarantine.exists() or not any(settings.quarantine.iterdir())


def test_a_refusal_for_good_quarantines_the_original(node) -> None:
    settings, spool, calls, original, worker = node
    spool.put(original)
    busy = worker(ScriptedSender(SendResult(FAILED, 0x0122, "no such SOP class")))
    busy.step()
    busy.step()
    assert calls == ["claim 1", "record written", "record quarantined", "sync", "commit",
                     "quarantined 1"]
    assert spool.reason[1] == "forward-rejected"
    (entry,) = settings.quarantine.iterdir()
    assert (entry / "original.dcm").read_bytes() == original
    assert '"forward-rejected"' in (entry / "reason.json").read_text()


def test_an_object_workers_died_on_is_quarantined_unsent(node) -> None:
    settings, spool, calls, original, worker = node
    spool.put(original, crashes=MAX_CRASHES)
    sender = ScriptedSender()
    busy = worker(sender)
    busy.step()
    busy.step()
    assert calls == ["claim 1", "record quarantined", "sync", "commit", "quarantined 1"]
    assert spool.reason[1] == "worker-crashed" and sender.sent == []
    (entry,) = settings.quarantine.iterdir()
    assert (entry / "original.dcm").read_bytes() == original


def test_what_the_pipeline_quarantines_is_never_sent(node) -> None:
    _settings, spool, calls, original, worker = node
    spool.put(original[:2000])  # cut short
    sender = ScriptedSender()
    busy = worker(sender)
    busy.step()
    busy.step()
    assert calls == ["claim 1", "record quarantined", "sync", "commit", "quarantined 1"]
    assert sender.sent == [] and spool.reason[1] != "worker-crashed"


def test_each_destination_is_settled_as_it_takes_the_object(tmp_path: Path, key_file: Path, vghtpe,
                                                             key) -> None:
    """With two destinations, one that took the object is recorded, synced and marked sent before
    the other's retry; the retry sends only to the one still missing it."""
    settings = ServeSettings(
        data=tmp_path / "data", key_file=key_file, allow=(AllowedCaller("SENDER"),),
        destinations=(DestinationSettings("A", "127.0.0.1", 1, "DEID"),
                      DestinationSettings("B", "127.0.0.1", 2, "DEID")),
        workers=1,
    )
    calls: list[str] = []
    spool = MemorySpool(calls)
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "unused", quarantine=settings.quarantine)
    spool.put(write_many_ct_slices(tmp_path / "in", 1, size=16)[0].read_bytes())
    sender = ScriptedSender(SendResult(DONE, 0, "stored"), SendResult(RETRY, 0xA700, "busy"),
                            SendResult(DONE, 0, "stored"))
    worker = Worker(settings, "w0", sender=sender, pipeline=pipeline, spool=spool,
                    open_records=lambda: NotedRecords(calls))
    worker.step()
    worker.step()
    assert calls == ["claim 1", "record written", "record forwarded", "sync", "commit",
                     "sent 1 A@127.0.0.1:1", "record retrying", "sync", "commit", "retry 1"]
    assert spool.reason[1] == "destination-busy" and spool.items[1].sent == ("A@127.0.0.1:1",)
    worker.down_until.clear()
    spool.due()
    calls.clear()
    worker.step()
    worker.step()
    assert calls == ["claim 1", "record forwarded", "sync", "commit", "sent 1 B@127.0.0.1:2",
                     "commit", "done 1"]
    assert [name for name, _ in sender.sent] == ["A@127.0.0.1:1", "B@127.0.0.1:2", "B@127.0.0.1:2"]
    assert spool.counts == {"processed": 1, "forwarded": 1, "quarantined": 0, "retried": 1}


def _two_destinations(tmp_path: Path, key_file: Path, vghtpe, key, sender: ScriptedSender,
                      calls: list[str]) -> tuple[MemorySpool, Worker]:
    settings = ServeSettings(
        data=tmp_path / "data", key_file=key_file, allow=(AllowedCaller("SENDER"),),
        destinations=(DestinationSettings("A", "127.0.0.1", 1, "DEID"),
                      DestinationSettings("B", "127.0.0.1", 2, "DEID")),
        workers=1,
    )
    spool = MemorySpool(calls)
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "unused", quarantine=settings.quarantine)
    spool.put(write_many_ct_slices(tmp_path / "in", 1, size=16)[0].read_bytes())
    worker = Worker(settings, "w0", sender=sender, pipeline=pipeline, spool=spool,
                    open_records=lambda: NotedRecords(calls))
    return spool, worker


def test_every_destination_has_the_object_before_an_answer_is_taken(tmp_path: Path, key_file: Path,
                                                                      vghtpe, key) -> None:
    """Each destination's sender sends at the same time (one waits not for the other's answer),
    and the worker de-identifies its next object meanwhile."""
    sender = ScriptedSender(SendResult(DONE, 0, "stored"), SendResult(DONE, 0, "stored"))
    calls: list[str] = []
    spool, worker = _two_destinations(tmp_path, key_file, vghtpe, key, sender, calls)
    assert worker.step() and worker.flight is not None
    assert sender.events == ["submit A@127.0.0.1:1", "submit B@127.0.0.1:2"]
    worker.step()  # nothing more due: the object in flight lands
    assert sender.events[2:] == ["answer A@127.0.0.1:1", "answer B@127.0.0.1:2"]
    assert spool.state[1] == "done" and spool.items[1].sent == ("A@127.0.0.1:1", "B@127.0.0.1:2")


def test_a_refusal_by_one_destination_comes_after_the_others_delivery_is_recorded(
        tmp_path: Path, key_file: Path, vghtpe, key) -> None:
    """A refuses the object for good while B stores it: B's delivery is recorded and marked
    before the object is quarantined for A (no release without its audit line)."""
    sender = ScriptedSender(SendResult(FAILED, 0xA900, "refused"), SendResult(DONE, 0, "stored"))
    calls: list[str] = []
    spool, worker = _two_destinations(tmp_path, key_file, vghtpe, key, sender, calls)
    worker.step()
    worker.step()
    assert calls.index("sent 1 B@127.0.0.1:2") < calls.index("record quarantined")
    assert spool.state[1] == "quarantined" and spool.reason[1] == "forward-rejected"
    assert spool.items[1].sent == ("B@127.0.0.1:2",)


def test_destinations_that_took_the_object_stay_marked_when_another_defers(tmp_path: Path,
                                                                          key_file: Path, vghtpe,
                                                                          key) -> None:
    settings = ServeSettings(
        data=tmp_path / "data", key_file=key_file, allow=(AllowedCaller("SENDER"),),
        destinations=tuple(DestinationSettings(n, "127.0.0.1", p, "DEID")
                           for n, p in (("A", 1), ("B", 2), ("C", 3))),
        workers=1,
    )
    spool = MemorySpool()
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "unused", quarantine=settings.quarantine)
    spool.put(write_many_ct_slices(tmp_path / "in", 1, size=16)[0].read_bytes())
    sender = ScriptedSender(SendResult(DONE, 0, "stored"), SendResult(DONE, 0, "stored"),
                            SendResult(RETRY, None, "cannot connect"))
    busy = Worker(settings, "w0", sender=sender, pipeline=pipeline, spool=spool,
                  open_records=lambda: NotedRecords([]))
    busy.step()
    busy.step()
    assert spool.items[1].sent == ("A@127.0.0.1:1", "B@127.0.0.1:2") and spool.state[1] == "retry"


def test_the_object_in_flight_goes_back_with_the_batch_when_the_records_disk_refuses(node) -> None:
    """The records' disk refuses a write while the previous object's send is under way: that
    object, too, goes back to the queue (nothing of it was released); once the disk takes writes
    both are done, each forwarded once more."""
    _settings, spool, calls, original, worker = node
    full = [False]

    class RefusingRecords(NotedRecords):
        def record(self, outcome) -> None:
            if full[0]:
                raise OSError(errno.ENOSPC, "No space left on device")
            super().record(outcome)

    for _ in range(2):
        spool.put(original)
    sender = ScriptedSender(*[SendResult(DONE, 0, "stored")] * 4)
    busy = worker(sender, RefusingRecords)
    assert busy.step()  # the first object handed over
    full[0] = True
    with pytest.raises(OSError):
        busy.step()  # its answer taken, its line refused
    assert spool.state == {1: "queued", 2: "queued"} and busy.flight is None
    full[0] = False
    calls.clear()
    while busy.step():
        pass
    assert spool.state == {1: "done", 2: "done"} and sender.unanswered == []
    assert calls.count("record forwarded") == 2 and calls[-4:] == ["sync", "commit", "done 1",
                                                                   "done 2"]


def test_a_stopping_worker_takes_the_answer_of_the_object_in_flight(node) -> None:
    """Stopped with an object handed over: its answer is taken and it is settled before the
    worker lets go of its senders."""
    _settings, spool, calls, original, worker = node
    spool.put(original)

    class ClosingSender(ScriptedSender):
        def close(self) -> None:
            calls.append(f"sender closed, {len(self.unanswered)} unanswered")

    class StopAfterOne:
        steps = 0

        def is_set(self) -> bool:
            self.steps += 1
            return self.steps > 1

        def wait(self, timeout: float) -> bool:
            return self.is_set()

    busy = worker(ClosingSender(SendResult(DONE, 0, "stored")))
    busy.run(StopAfterOne())
    assert calls[:7] == ["claim 1", "record written", "record forwarded",
                         "sender closed, 0 unanswered", "sync", "commit", "done 1"]
    assert spool.state[1] == "done"


def test_a_bug_settling_the_object_in_flight_is_counted_against_that_object(node) -> None:
    """The worker fails (a bug) while it settles the object it sent last, after it claimed and
    de-identified the next: the next goes back to the queue untouched, so the node counts the
    crash against the object in flight, the one the worker still holds."""
    _settings, spool, calls, original, worker = node

    class BrokenOnForwarded(NotedRecords):
        def record(self, outcome) -> None:
            if event_of(outcome) == "forwarded":
                raise RuntimeError("a bug")
            super().record(outcome)

    for _ in range(2):
        spool.put(original)
    busy = worker(ScriptedSender(*[SendResult(DONE, 0, "stored")] * 2), BrokenOnForwarded)
    assert busy.step()
    with pytest.raises(RuntimeError):
        busy.run(StopFlag())  # as the worker process runs it: the bug ends it
    assert spool.state == {1: "claimed", 2: "queued"}  # the crash goes to 1 (spool.release_worker)
    assert "release 2" in calls and calls.count("record forwarded") == 0


def test_the_released_uid_claim_is_durable_before_the_object_is_handed_over(
    node, tmp_path: Path, vghtpe, key
) -> None:
    """The node's index commits a claim without a sync (a synced commit holds SQLite's write
    lock through its fsync: the other workers' claims waited); the worker syncs it before any
    destination has the object, so no power cut can undo a claim whose object went out."""
    settings, spool, calls, original, _worker = node

    class NotedIndex(ReleasedIndex):
        def claim(self, *args, **kwargs) -> bool:
            calls.append("index claim")
            return super().claim(*args, **kwargs)

        def sync(self) -> None:
            calls.append("index sync")
            super().sync()

    class NotedSender(ScriptedSender):
        def submit(self, destination: str, data: bytes) -> Pending:
            calls.append("submit")
            return super().submit(destination, data)

    index = NotedIndex(tmp_path / "released.sqlite", durable=False)
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "unused", quarantine=settings.quarantine,
                        released=index)
    spool.put(original)
    busy = Worker(settings, "w0", sender=NotedSender(SendResult(DONE, 0, "stored")),
                  pipeline=pipeline, spool=spool, open_records=lambda: NotedRecords(calls))
    assert busy.step() is True
    assert calls == ["claim 1", "index claim", "index sync", "record written", "submit"]
    made = service._make_pipeline(settings, vghtpe, key)
    assert made.released is not None and made.released.durable is False


def test_an_idle_worker_waits_on_the_doorbell_not_the_clock(node) -> None:
    """With nothing to claim, a worker waits on what the receiver rings when it queues an object
    (deid.doorbell), and claims again as soon as it rang."""
    settings, spool, calls, original, worker = node

    class Stop:
        def __init__(self) -> None:
            self.set_ = False

        def is_set(self) -> bool:
            return self.set_

        def wait(self, timeout: float) -> bool:
            raise AssertionError("an idle worker with a doorbell does not sleep on the clock")

    stop = Stop()

    class NotedDoorbell:
        def __init__(self) -> None:
            self.waits: list[float] = []

        def wait(self, timeout: float) -> bool:
            self.waits.append(timeout)
            if len(self.waits) == 1:
                spool.put(original)  # the receiver queues an object, and rings
                return True
            stop.set_ = True
            return False

    bell = NotedDoorbell()
    busy = worker(ScriptedSender(SendResult(DONE, 0, "stored")), doorbell=bell)
    busy.run(stop)
    assert bell.waits == [service.POLL_SECONDS, service.POLL_SECONDS]
    assert "claim 1" in calls and "record forwarded" in calls  # woken, it took the object
