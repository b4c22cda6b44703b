"""settle and Batch (deid.settlement): the order record -> sync -> release, one item or a batch, and
what a failed sync leaves (nothing released); the run's journal as a ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deid.outcome import Quarantined, Released, Written
from deid.settlement import Batch, settle


class NotedLedger:
    def __init__(self, *, fail_sync: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_sync = fail_sync

    def record(self, item: str, outcome) -> None:
        self.calls.append(f"record {item}")

    def sync(self) -> None:
        self.calls.append("sync")
        if self.fail_sync:
            raise OSError(28, "No space left on device")

    def release(self, item: str, outcome) -> None:
        self.calls.append(f"release {item}")


WRITTEN = Written(Released("p/s/e/1.dcm", sop_uid="2.25.1"))


def test_settle_records_syncs_then_releases() -> None:
    ledger = NotedLedger()
    settle(ledger, "a", WRITTEN)
    assert ledger.calls == ["record a", "sync", "release a"]


def test_a_batch_syncs_once_before_it_releases() -> None:
    ledger = NotedLedger()
    batch = Batch(ledger, 3)
    for item in "abcde":
        batch.settle(item, WRITTEN)
    batch.close()
    first = ledger.calls.index("sync")
    assert ledger.calls[:first] == ["record a", "record b", "record c"]
    released = [c for c in ledger.calls if c.startswith("release")]
    assert released == [f"release {i}" for i in "abcde"]
    for item in "abcde":  # every release comes after a sync that followed its record
        at = ledger.calls.index(f"release {item}")
        assert "sync" in ledger.calls[ledger.calls.index(f"record {item}"):at]


def test_a_failed_sync_releases_nothing_and_is_raised() -> None:
    ledger = NotedLedger(fail_sync=True)
    with pytest.raises(OSError):
        settle(ledger, "a", WRITTEN)
    batch = Batch(ledger, 2)
    batch.settle("b", WRITTEN)
    batch.settle("c", WRITTEN)  # its commit fails in the background
    with pytest.raises(OSError):
        batch.close()
    assert not [c for c in ledger.calls if c.startswith("release")]


def test_the_run_journal_is_a_ledger(tmp_path: Path) -> None:
    from deid.run import Journal, RunPaths
    from deid.run.journal import skipped_outcome as _skipped

    journal = Journal(tmp_path)
    quarantined = Quarantined("not-dicom", "read", "", "e1", "not a DICOM file")
    batch = Batch(journal, 64)
    batch.settle("ref-w", WRITTEN)
    batch.settle("ref-q", quarantined)
    assert (tmp_path / "journal.jsonl").read_text() == ""  # not released before the sync
    batch.close()
    journal.close()
    lines = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [(line["ref"], line["status"]) for line in lines] == [("ref-w", "written"), ("ref-q", "quarantined")]
    assert lines[0]["sop_uid"] == "2.25.1" and lines[1]["reason"] == "not-dicom"
    again = Journal(tmp_path)
    paths = RunPaths(tmp_path / "out", tmp_path / "q", tmp_path)
    (tmp_path / "out" / "p/s/e").mkdir(parents=True)
    (tmp_path / "out" / "p/s/e/1.dcm").write_bytes(b"x")
    (tmp_path / "q" / "e1").mkdir(parents=True)
    assert again.is_done("ref-w", paths) and again.is_done("ref-q", paths)
    skipped = _skipped(again.done["ref-w"])
    assert skipped.released is not None and skipped.released.sop_uid == "2.25.1"
    assert _skipped(again.done["ref-q"]).quarantine == "e1"
    again.close()


def test_a_batch_in_the_callers_thread_keeps_what_it_could_not_release() -> None:
    """``background=False`` (the node's worker): a full batch is committed at once, in the
    caller's thread; one whose sync failed stays pending until the caller drops it."""
    ledger = NotedLedger()
    batch = Batch(ledger, 2, background=False)
    batch.settle("a", WRITTEN)
    assert batch.pending == ["a"] and ledger.calls == ["record a"]
    batch.settle("b", WRITTEN)
    assert batch.pending == [] and ledger.calls == ["record a", "record b", "sync", "release a",
                                                    "release b"]
    ledger.fail_sync = True
    batch.settle("c", WRITTEN)
    with pytest.raises(OSError):
        batch.close()
    assert batch.pending == ["c"] and ledger.calls[-1] == "sync"
    assert batch.drop() == ["c"] and batch.pending == []
    batch.close()  # nothing left: nothing to commit
    assert "release c" not in ledger.calls
