"""A spool in memory with the interface a node worker uses (deid.spool.Spool): items, their
states and counters in dicts, every call noted in ``calls`` (shared with other fakes, so a test
can check the order of record, sync and release)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deid.spool import Item


class MemorySpool:
    def __init__(self, calls: list[str] | None = None) -> None:
        self.calls = calls if calls is not None else []
        self.data: dict[int, bytes] = {}
        self.items: dict[int, Item] = {}
        self.state: dict[int, str] = {}  # queued | claimed | retry | done | quarantined
        self.reason: dict[int, str] = {}
        self.counts = {"processed": 0, "forwarded": 0, "quarantined": 0, "retried": 0}

    def put(self, data: bytes, *, crashes: int = 0) -> int:
        number = len(self.data) + 1
        self.data[number] = data
        self.items[number] = Item(number, Path(f"memory/{number}"), 0, (), 0.0, crashes)
        self.state[number] = "queued"
        return number

    def claim(self, worker: str, *, lease: float = 600.0) -> Item | None:
        for number, state in self.state.items():
            if state == "queued":
                self.state[number] = "claimed"
                self.calls.append(f"claim {number}")
                return self.items[number]
        return None

    def read(self, item: Item) -> bytes:
        return self.data[item.id]

    def mark_sent(self, item: Item, destination: str) -> Item:
        sent = tuple(sorted(set(item.sent) | {destination}))
        self.items[item.id] = item = Item(item.id, item.path, item.attempts, sent, item.received,
                                          item.crashes)
        self.calls.append(f"sent {item.id} {destination}")
        return item

    def ack(self, item: Item, *, processed: bool = False) -> None:
        self._finish(item, "done", "forwarded", processed)

    def quarantine(self, item: Item, reason: str) -> None:
        self.reason[item.id] = reason
        self._finish(item, "quarantined", "quarantined", False)

    def retry(self, item: Item, reason: str, *, first_delay: float, max_delay: float,
              processed: bool = False) -> float:
        self.reason[item.id] = reason
        old = self.items[item.id]
        self.items[item.id] = Item(old.id, old.path, old.attempts + 1, old.sent, old.received,
                                   old.crashes)
        self._finish(item, "retry", "retried", processed)
        return first_delay

    def release(self, item: Item) -> None:
        self.state[item.id] = "queued"
        self.calls.append(f"release {item.id}")

    @contextmanager
    def together(self) -> Iterator[None]:
        """The releases inside share one commit (noted around them)."""
        self.calls.append("commit")
        yield

    def due(self) -> None:
        """Every item waiting for a retry is due now."""
        for number, state in self.state.items():
            if state == "retry":
                self.state[number] = "queued"

    def close(self) -> None:
        self.calls.append("close")

    def _finish(self, item: Item, state: str, counter: str, processed: bool) -> None:
        self.state[item.id] = state
        self.counts[counter] += 1
        self.counts["processed"] += processed
        self.calls.append(f"{state} {item.id}")
