"""The run's worker processes: forked, fed a few items at a time, their results given back in
input order.

``multiprocessing.Pool`` does the same with three threads in the run's process (tasks, results,
and one watching the workers, which wakes whenever a result waits in the pipe: ~0.1 ms of the
run's process per object, on the cores the workers need).  Here the run's process alone talks to
the workers, in its own thread: it sends each worker a batch as it takes one (at most ``ahead``
batches queued per worker, so a worker never waits for the next), reads what comes back and gives
it back in input order (at most ``window`` batches held back, so memory stays flat whatever the
input's size).  The input is read as the workers need it: the run never lists it whole.

A worker that dies (killed, out of memory, a crash in a C decoder) is replaced and what it held
is done again, the batch it was doing item by item: an object workers keep dying on alone is
given up on (the run quarantines it, ``worker-crashed``) and the run goes on; workers that die
again and again with nothing done in between stop the run with :class:`WorkerLost`.  A worker's
exception is raised in the run's process at its item's turn.  Workers ignore Ctrl-C (the run's
process stops them) and leave quietly when the run's process is gone.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from deid import logs
from deid.errors import UsageError

Item = TypeVar("Item")
Result = TypeVar("Result")

BATCH = 4  # items sent to a worker at a time (the run's objects: ~10 ms of work)
AHEAD = 2  # batches queued per worker: it never waits for the run's process
WINDOW = 64  # batches sent and not yet given back in order, at most (one slow object holds them)
SOLO_DEATHS = 2  # workers that may die on one object done alone before it is given up on
DEATHS_IN_A_ROW = 8  # workers lost with no answer in between: they cannot work here (memory)


@dataclass
class _Job:
    """Items sent to a worker together: a batch, or one item of a batch done alone (``index``)."""

    batch: int  # the batch's number: results are given back in this order
    index: int | None  # the item's place in its batch, when done alone
    items: list[Any]


@dataclass
class _Parts:
    """A batch done item by item: the results so far, how many are still out, the first error."""

    results: list[Any]
    waiting: int
    error: BaseException | None = None


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
                 window: int = WINDOW, crashed: Callable[[Item, int], Result] | None = None,
                 solo_deaths: int = SOLO_DEATHS, deaths_in_a_row: int = DEATHS_IN_A_ROW) -> None:
        self.batch, self.ahead, self.window = batch, ahead, window
        # an item's result when workers keep dying on it; without, a lost worker stops the map
        self.crashed = crashed
        self.solo_deaths = solo_deaths
        self.deaths_in_a_row = deaths_in_a_row if crashed is not None else 0
        self._context = multiprocessing.get_context("fork")
        self._serving = (initializer, initargs, work)
        self._workers: list[tuple[Connection, Any]] = []
        try:
            for _ in range(processes):
                self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> Connection:
        """Fork one more worker; the run's end of its pipe."""
        ours, theirs = self._context.Pipe(duplex=True)
        others = [ours, *(conn for conn, _process in self._workers)]  # the run's ends: see _serve
        process = self._context.Process(target=_serve, daemon=True, name="deid-run-worker",
                                        args=(theirs, others, *self._serving))
        process.start()
        theirs.close()
        self._workers.append((ours, process))
        return ours

    def _forget(self, conn: Connection) -> Any:
        """A dead worker's process, no longer one of the pool's (its exit code read)."""
        process = next(process for ours, process in self._workers if ours is conn)
        self._workers = [(ours, other) for ours, other in self._workers if ours is not conn]
        process.join(1)
        return process

    def map(self, items: Iterable[Item]) -> Iterator[Result]:
        """``work(item)`` of each item, in the order of ``items`` (read as workers need them).

        A worker that dies is replaced and what it held is done again: the batch it was doing
        item by item, each alone, so that an object that kills its worker (a decoder's crash) is
        found; one a worker died on ``solo_deaths`` times alone gives ``crashed(item, deaths)``
        as its result, and the run goes on.  Workers dying more than ``deaths_in_a_row`` times
        with no result in between (they cannot start, memory is short): :class:`WorkerLost`."""
        source = iter(items)
        queued: dict[Connection, deque[_Job]] = {conn: deque() for conn, _ in self._workers}
        held: dict[int, tuple[bool, Any]] = {}  # batch number -> (ok, results or exception)
        split: dict[int, _Parts] = {}  # batches done item by item after a worker died on them
        solo: dict[tuple[int, int], int] = {}  # (batch, index) -> workers died on it alone
        again: deque[_Job] = deque()  # jobs a dead worker held: sent before any new batch
        sent = given = 0  # batches sent to workers; batches given back
        deaths = 0  # workers lost since the last answer
        more = True

        def take(job: _Job, answer: tuple[bool, Any]) -> None:
            if job.index is None:
                held[job.batch] = answer
                return
            parts = split[job.batch]
            ok, value = answer
            if ok:
                parts.results[job.index] = value[0]
            else:
                parts.error = parts.error or value
            parts.waiting -= 1
            if not parts.waiting:
                del split[job.batch]
                held[job.batch] = (False, parts.error) if parts.error else (True, parts.results)

        def feed(conn: Connection) -> None:
            nonlocal sent, more
            while conn in queued and len(queued[conn]) < self.ahead:
                if again:
                    job = again.popleft()
                elif more and sent - given < self.window:
                    batch = list(islice(source, self.batch))
                    if not batch:
                        more = False
                        return
                    job = _Job(sent, None, batch)
                    sent += 1
                else:
                    return
                queued[conn].append(job)
                try:
                    conn.send(job.items)
                except OSError:  # the worker is gone
                    lost(conn)
                    return

        def lost(conn: Connection) -> None:
            """A worker died: what it answered is taken, what it held is done again."""
            nonlocal deaths
            jobs = queued.pop(conn)
            process = self._forget(conn)
            try:  # answers it sent before it died wait in the pipe
                while jobs and conn.poll():
                    answer = conn.recv()
                    take(jobs.popleft(), answer)
                    deaths = 0
            except (EOFError, OSError):
                pass
            conn.close()
            deaths += 1
            if deaths > self.deaths_in_a_row:
                raise _worker_lost(process)
            logs.get_logger("deid.run").warning(
                "worker process lost: replaced, its objects done again", status=_how(process),
                count=sum(len(job.items) for job in jobs))
            if jobs:  # the first it was doing when it died; the others it had not begun
                doing = jobs.popleft()
                if doing.index is None and len(doing.items) > 1:
                    split[doing.batch] = _Parts([None] * len(doing.items), len(doing.items))
                    again.extend(_Job(doing.batch, index, [item])
                                 for index, item in enumerate(doing.items))
                else:
                    where = (doing.batch, doing.index or 0)
                    solo[where] = solo.get(where, 0) + 1
                    if solo[where] >= self.solo_deaths and self.crashed is not None:
                        died = solo[where] + (doing.index is not None)  # (and once in its batch)
                        take(doing, (True, [self.crashed(doing.items[0], died)]))
                    else:
                        again.append(doing)
                again.extend(jobs)
            fresh = self._start()
            queued[fresh] = deque()
            feed(fresh)

        for conn in list(queued):
            feed(conn)
        while True:
            while given in held:
                ok, value = held.pop(given)
                if not ok:
                    raise value
                yield from value
                given += 1
                for conn in list(queued):
                    feed(conn)
            if given == sent and not more:
                return
            sentinels = {process.sentinel: conn for conn, process in self._workers}
            for ready in wait([*queued, *sentinels]):
                conn = sentinels.get(ready, ready)  # type: ignore[arg-type]
                if conn not in queued:
                    continue  # its worker was replaced already (its pipe and its end both woke)
                if ready in sentinels:
                    lost(conn)
                    continue
                try:
                    answer = conn.recv()
                except (EOFError, OSError):  # the worker is gone
                    lost(conn)
                    continue
                take(queued[conn].popleft(), answer)
                deaths = 0  # a worker works: deaths since are counted anew
                feed(conn)

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


def _how(process: Any) -> str:
    """How a worker process ended (it was joined)."""
    code = process.exitcode
    return (f"was killed (signal {-code})" if code is not None and code < 0
            else f"ended (exit code {code})")


def _worker_lost(process: Any) -> WorkerLost:
    process.join(1)  # its exit code
    how = _how(process)
    return WorkerLost(f"a worker process {how}, perhaps for want of memory: run the same command "
                      "again (with fewer --workers if memory is short); it keeps what is done and "
                      "completes the rest")
