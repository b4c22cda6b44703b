"""How an item ends: its outcome recorded, the records made durable, then the original released.

Both ways deid works keep this one order, through one :func:`settle` over a :class:`Ledger`:

* ``deid run``: the ledger is the run's journal (:class:`deid.run.Journal`): record = the audit
  line, sync = one ``syncfs`` per file system for the released files and the audit lines,
  release = the journal line that makes a later run skip the source.  It settles in batches
  (:class:`Batch`): each item is recorded as it comes, and one sync covers many before they are
  released.
* ``deid serve``: the ledger is the node's worker (:class:`deid.service.Worker`): record = the
  audit line (and map entry), sync = their fsync, release = the spool lets the original go
  (forwarded, quarantined) or keeps it for a later attempt (retry).  It settles in batches too,
  committed in the worker's own thread (``background=False``): when a batch is full or the
  worker finds nothing more to do, one fsync covers the batch's lines, one spool commit its
  releases.

A crash between any two steps loses nothing: an item not yet released is done again, to the same
bytes (deterministic), and what was recorded stays recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Generic, Protocol, TypeVar

from deid.outcome import Forwarded, Outcome, Quarantined, Retry

Item = TypeVar("Item")
Item_contra = TypeVar("Item_contra", contravariant=True)

#: what a node's claimed spool item ends as (deid.outcome; kept here for the node's readers)
Settlement = Forwarded | Quarantined | Retry


class Ledger(Protocol[Item_contra]):
    """Where items are settled: what is kept of an outcome, how it is made durable, and how the
    source of the item is told it may let the original go."""

    def record(self, item: Item_contra, outcome: Outcome) -> None:
        """Write what the outcome leaves in the records (not yet durable)."""

    def sync(self) -> None:
        """Make everything recorded so far durable."""

    def release(self, item: Item_contra, outcome: Outcome) -> None:
        """Tell the item's source its outcome: the original goes, or stays for a retry."""


def settle(ledger: Ledger[Item], item: Item, outcome: Outcome) -> None:
    """End one item: record, sync, release, in this order."""
    ledger.record(item, outcome)
    commit(ledger, [(item, outcome)])


def commit(ledger: Ledger[Item], settled: Sequence[tuple[Item, Outcome]]) -> None:
    """Release items already recorded, after one sync that makes their records durable.  A ledger
    with a ``releasing()`` context (the node's worker: one spool commit) releases them inside it."""
    ledger.sync()
    with getattr(ledger, "releasing", nullcontext)():
        for item, outcome in settled:
            ledger.release(item, outcome)


class Batch(Generic[Item]):
    """Settles items ``size`` at a time: each is recorded when it comes; one sync covers a batch,
    then its items are released.  The sync and release of a full batch run in the background while
    the next items come (one batch at a time); what it raised is raised by the next full batch or
    by :meth:`close`, and its items are then not released (done again by the next run).

    With ``background=False`` a full batch is committed in the caller's thread, and a batch whose
    commit failed stays :attr:`pending` (the caller gives its items back, :meth:`drop`)."""

    def __init__(self, ledger: Ledger[Item], size: int, *, background: bool = True) -> None:
        self.ledger = ledger
        self.size = size
        self.background = background
        self._pending: list[tuple[Item, Outcome]] = []
        self._committer: threading.Thread | None = None
        self._failed: BaseException | None = None

    def settle(self, item: Item, outcome: Outcome) -> None:
        """Record ``item`` now; release it with its batch."""
        self.ledger.record(item, outcome)
        self._pending.append((item, outcome))
        if len(self._pending) >= self.size and not self.background:
            self.close()
        elif len(self._pending) >= self.size and (self._committer is None
                                                or not self._committer.is_alive()):
            self._wait()
            batch, self._pending = self._pending, []
            self._committer = threading.Thread(target=self._commit_in_background, args=(batch,),
                                               daemon=True)
            self._committer.start()

    def close(self) -> None:
        """Wait for the batch under way, then commit what is left (raising the first failure)."""
        self._wait()
        if self._pending:
            commit(self.ledger, self._pending)
            self._pending = []

    @property
    def pending(self) -> list[Item]:
        """The items recorded and not yet released (in the caller's thread)."""
        return [item for item, _outcome in self._pending]

    def drop(self) -> list[Item]:
        """Forget the items not yet released (their commit failed); returns them."""
        dropped, self._pending = self.pending, []
        return dropped

    def _commit_in_background(self, batch: list[tuple[Item, Outcome]]) -> None:
        try:
            commit(self.ledger, batch)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by _wait
            self._failed = exc

    def _wait(self) -> None:
        if self._committer is not None:
            self._committer.join()
            self._committer = None
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed
