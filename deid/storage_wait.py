"""A worker's wait for the data folder's file system to take writes again, and what the
workers tell the node about it (shared memory the node's /healthz and /metrics read).

A disk that is full, read-only or failing is an environmental condition, not a fault of any
object: the worker gives its item back, pauses (doubling, capped), logs once, and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from deid.spool import DISK_FULL, IO_ERROR, READ_ONLY, StorageUnavailable

STORAGE_FIRST_WAIT = 0.1  # a worker whose writes are refused pauses this long, doubling...
STORAGE_MAX_WAIT = 5.0  # ...up to this
STORAGE_LOG_SECONDS = 60.0  # at most one "waiting" line a minute per worker
STORAGE_KINDS = ("", DISK_FULL, READ_ONLY, IO_ERROR)  # index 0: not waiting


class WorkerHealth:
    """What the worker processes tell the node (shared memory, one slot per worker index): since
    when each waits for the data folder to take writes (0: it does not), why, and how many writes
    were refused."""

    def __init__(self, context: Any, workers: int) -> None:
        self.since = context.Array("d", workers)  # unix time the wait began
        self.kind = context.Array("i", workers)  # index into STORAGE_KINDS
        self.refused = context.Array("q", workers)  # writes refused, since the node started

    def slot(self, index: int) -> WorkerSlot:
        return WorkerSlot(self, index)

    def waiting(self) -> list[str]:
        """Why each waiting worker waits (one entry per waiting worker)."""
        return [
            STORAGE_KINDS[self.kind[i]] or "storage"
            for i in range(len(self.since))
            if self.since[i]
        ]

    def refusals(self) -> int:
        return sum(self.refused[:])


class WorkerSlot:
    """One worker's place in :class:`WorkerHealth` (a worker made alone, as in tests: none)."""

    def __init__(self, health: WorkerHealth | None, index: int = 0) -> None:
        self.health = health
        self.index = index

    def waiting(self, kind: str) -> None:
        if self.health is not None:
            if not self.health.since[self.index]:
                self.health.since[self.index] = time.time()
            self.health.kind[self.index] = STORAGE_KINDS.index(kind) if kind in STORAGE_KINDS else 0
            self.health.refused[self.index] += 1

    def clear(self) -> None:
        if self.health is not None:
            self.health.since[self.index] = 0.0
            self.health.kind[self.index] = 0


class StorageWait:
    """A worker's wait for its file system to take writes again.  :meth:`refused` returns the pause
    before the next try (doubling from STORAGE_FIRST_WAIT to STORAGE_MAX_WAIT) and logs one line
    when a wait begins (no traceback: not a bug), then at most one each STORAGE_LOG_SECONDS;
    :meth:`succeeded` ends the wait (one line, when its start was logged)."""

    def __init__(
        self, log: Any, slot: WorkerSlot, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.log = log
        self.slot = slot
        self.clock = clock
        self.since: float | None = None  # when this wait began
        self.pause = 0.0
        self.logged = False  # this wait's beginning was logged
        self.last_line: float | None = None

    def refused(self, failure: StorageUnavailable) -> float:
        now = self.clock()
        if self.since is None:
            self.since, self.pause, self.logged = now, STORAGE_FIRST_WAIT, False
        else:
            self.pause = min(STORAGE_MAX_WAIT, self.pause * 2)
        self.slot.waiting(failure.kind)
        if self.last_line is None or now - self.last_line >= STORAGE_LOG_SECONDS:
            self.last_line, self.logged = now, True
            self._log(
                "warning",
                "storage refuses writes; waiting (nothing is lost: the object stays in the spool)",
                code="storage-unavailable",
                error_type=failure.kind,
                stage=failure.where,
                seconds=round(now - self.since, 1),
            )
        return self.pause

    def succeeded(self) -> None:
        if self.since is None:
            return
        if self.logged:
            self._log(
                "info",
                "storage takes writes again; resuming",
                code="storage-available",
                seconds=round(self.clock() - self.since, 1),
            )
        self.since = None
        self.slot.clear()

    def _log(self, level: str, event: str, **fields: Any) -> None:
        """A log on the same full disk must not end the wait (the line is lost, not the worker)."""
        try:
            getattr(self.log, level)(event, **fields)
        except OSError:
            pass
