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

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
        # one thread commits the batches, made at the first and kept until close (a thread started
        # for each batch kept the caller waiting until it ran: ~3 ms a batch on busy cores)
        self._committer: ThreadPoolExecutor | None = None
        self._committing: Future[None] | None = None  # the batch under way

    def settle(self, item: Item, outcome: Outcome) -> None:
        """Record ``item`` now; release it with its batch."""
        self.ledger.record(item, outcome)
        self._pending.append((item, outcome))
        if len(self._pending) >= self.size and not self.background:
            self.close()
        elif len(self._pending) >= self.size and (self._committing is None
                                                or self._committing.done()):
            self._wait()
            batch, self._pending = self._pending, []
            if self._committer is None:
                self._committer = ThreadPoolExecutor(1, thread_name_prefix="deid-commit")
            self._committing = self._committer.submit(commit, self.ledger, batch)

    def close(self) -> None:
        """Wait for the batch under way, then commit what is left (raising the first failure)."""
        try:
            self._wait()
        finally:
            if self._committer is not None:
                self._committer.shutdown()
                self._committer = None
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

    def _wait(self) -> None:
        """Wait for the batch under way; raise what its commit raised."""
        committing, self._committing = self._committing, None
        if committing is not None:
            committing.result()
