"""The run's worker processes: forked, fed a few items at a time, their results given back in
input order.

``multiprocessing.Pool`` does the same with three threads in the run's process (tasks, results,
and one watching the workers, which wakes whenever a result waits in the pipe: ~0.1 ms of the
run's process per object, on the cores the workers need).  Here the run's process alone talks to
the workers, in its own thread: it sends each worker a batch as it takes one (at most ``ahead``
batches queued per worker, so a worker never waits for the next), reads what comes back and gives
it back in input order (at most ``window`` batches held back, so memory stays flat whatever the
input's size).  The input is read as the workers need it: the run never lists it whole.

A worker that dies (killed, out of memory) stops the run with :class:`WorkerLost`; a worker's
exception is raised in the run's process at its item's turn.  Workers ignore Ctrl-C (the run's
process stops them) and leave quietly when the run's process is gone.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from deid.errors import UsageError

Item = TypeVar("Item")
Result = TypeVar("Result")

BATCH = 4  # items sent to a worker at a time (the run's objects: ~10 ms of work)
AHEAD = 2  # batches queued per worker: it never waits for the run's process
WINDOW = 64  # batches sent and not yet given back in order, at most (one slow object holds them)


class WorkerLost(UsageError):
    """A worker process ended in the middle of the run (exit code 2); the message says what to
    do."""


def _serve(conn: Connection, others: list[Connection], initializer: Callable[..., None],
           initargs: tuple, work: Callable[[Any], Any]) -> None:
    """A worker: set up, then do each batch the run's process sends, until told to stop."""
    for other in others:  # the run's ends of the workers' pipes: only the run may hold them, or
        other.close()  # a worker outlives a run that died (its pipe would never end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the run's process stops the workers
    initializer(*initargs)
    while True:
        try:
            batch = conn.recv()
            if batch is None:
                return
            try:
                answer: tuple[bool, Any] = (True, [work(item) for item in batch])
            except Exception as exc:  # noqa: BLE001 - raised in the run's process, at its turn
                answer = (False, exc)
            try:
                conn.send(answer)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:  # pickle refused it
                conn.send((False, RuntimeError(f"{type(exc).__name__} in a worker process")))
        except (EOFError, OSError):  # the run's process is gone (or stopping us): nothing to tell
            return


class Pool(Generic[Item, Result]):
    """``processes`` forked workers, each set up by ``initializer(*initargs)``, doing ``work``."""

    def __init__(self, processes: int, initializer: Callable[..., None], initargs: tuple,
                 work: Callable[[Item], Result], *, batch: int = BATCH, ahead: int = AHEAD,
                 window: int = WINDOW) -> None:
        self.batch, self.ahead, self.window = batch, ahead, window
        context = multiprocessing.get_context("fork")
        self._workers: list[tuple[Connection, Any]] = []
        try:
            for _ in range(processes):
                ours, theirs = context.Pipe(duplex=True)
                others = [ours, *(conn for conn, _process in self._workers)]
                process = context.Process(target=_serve, daemon=True, name="deid-run-worker",
                                          args=(theirs, others, initializer, initargs, work))
                process.start()
                theirs.close()
                self._workers.append((ours, process))
        except BaseException:
            self.close()
            raise

    def map(self, items: Iterable[Item]) -> Iterator[Result]:
        """``work(item)`` of each item, in the order of ``items`` (read as workers need them)."""
        source = iter(items)
        queued: dict[Connection, deque[int]] = {conn: deque() for conn, _ in self._workers}
        sentinels = {process.sentinel: process for _, process in self._workers}
        held: dict[int, tuple[bool, Any]] = {}  # batch number -> (ok, results or exception)
        sent = given = 0  # batches sent to workers; batches given back
        more = True

        def feed(conn: Connection) -> None:
            nonlocal sent, more
            while more and len(queued[conn]) < self.ahead and sent - given < self.window:
                batch = list(islice(source, self.batch))
                if not batch:
                    more = False
                    return
                try:
                    conn.send(batch)
                except OSError:  # the worker is gone
                    raise self._lost(conn) from None
                queued[conn].append(sent)
                sent += 1

        for conn in queued:
            feed(conn)
        while given < sent:
            while given in held:
                ok, value = held.pop(given)
                if not ok:
                    raise value
                yield from value
                given += 1
                for conn in queued:
                    feed(conn)
            if given == sent:
                break
            for ready in wait([*queued, *sentinels]):
                if ready in sentinels:
                    raise _worker_lost(sentinels[ready])
                conn = ready  # type: ignore[assignment]
                try:
                    held[queued[conn].popleft()] = conn.recv()
                except (EOFError, OSError):  # the worker is gone
                    raise self._lost(conn) from None
                feed(conn)

    def _lost(self, conn: Connection) -> WorkerLost:
        return _worker_lost(next(process for ours, process in self._workers if ours is conn))

    def close(self) -> None:
        """Stop the workers (at once: what they were doing is done again by the next run)."""
        for conn, process in self._workers:
            if process.is_alive():
                process.terminate()
            conn.close()
        for _conn, process in self._workers:
            process.join()
        self._workers = []

    def __enter__(self) -> Pool[Item, Result]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _worker_lost(process: Any) -> WorkerLost:
    process.join(1)  # its exit code
    code = process.exitcode
    how = (f"was killed (signal {-code})" if code is not None and code < 0
           else f"ended (exit code {code})")
    return WorkerLost(f"a worker process {how}, perhaps for want of memory: run the same command "
                      "again (with fewer --workers if memory is short); it keeps what is done and "
                      "completes the rest")
