"""Destinations shared by every worker: one sender process per destination owns its association.

A node worker hands an object's released bytes to the destination's sender and takes the
answer once it has de-identified its next object (:meth:`SharedSender.submit`, then
:meth:`SharedSender.result`): it copies them into its own shared memory block (:class:`HandOff`,
one per worker and destination, grown as objects need) and writes only the block's name and the
object's size to its request pipe to the destination's sender (:class:`SenderLine`); the sender
sends them from that block over its association (one at a time, or ``associations`` at once)
and answers the worker that asked with the forwarder's outcome (done, retry, failed:
:func:`deid.forward.classify`).  (Pickled through a queue, each object was copied four times
between the two processes and cost ~0.4 ms of CPU.)  A worker writes its block again only once
its last request was answered; after a request it gave up on, it moves to a new block (the
sender may still be reading the old one).  A block's name goes once the sender has opened it: a
node killed outright leaves nothing in /dev/shm.  An object no block can be had for (/dev/shm
too small) goes through an owner-only file in the node's outgoing folder, named in its request
(through the pipe itself where that file cannot be written).

A peer that takes one association at a time (a plain ``storescp``, a small PACS) so serves every
worker at full speed, and no worker holds an association another one waits out.

Nothing durable lives here: the spool keeps the original until every destination has answered
done, so a request or an answer lost with a sender that died is a retry, and a retry
de-identifies again to the same bytes.  A late answer to a request its worker gave up on is
dropped (each request carries a ticket); the peer may then have stored the object twice, under
the same SOP Instance UID, which a C-STORE SCP takes as the same object.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any, Protocol

from deid import logs
from deid.folder_destination import FolderDestination, FolderForwarder
from deid.forward import RETRY, Destination, Forwarder, SendResult

#: the largest object is given time for this rate (bytes/s), as the forwarder does
_SLOWEST_RATE = 1_000_000
#: the request pipe's size where the system allows it
_PIPE_BYTES = 1 << 20
#: the smallest shared block a worker hands objects over in (it grows to the largest object)
_BLOCK_BYTES = 1 << 20
#: a sender's answer when it cannot open the block of a request (its worker let go of it)
WITHDRAWN = "the object to send was withdrawn"


@dataclass
class Pending:
    """A send handed to a sender and not yet answered: what :meth:`Sender.result` waits for.
    ``answer``: set at once by a sender that sends in the caller's process."""

    destination: str
    data: bytes
    ticket: str = ""
    deadline: float = 0.0
    answer: SendResult | None = None
    spilled: str = ""  # the file the object went through when no shared block could be had


class Sender(Protocol):
    """What a worker sends with: released bytes to a named destination, the outcome back.
    ``submit`` hands the bytes over and returns at once where the sender is another process
    (the worker de-identifies its next object meanwhile); ``result`` waits for the answer."""

    def submit(self, destination: str, data: bytes) -> Pending: ...

    def result(self, pending: Pending) -> SendResult: ...

    def close(self) -> None: ...


class LocalSender:
    """Sends from the calling process over its own associations (one worker, tests, tools):
    ``submit`` sends at once."""

    def __init__(self, destinations: dict[str, Destination], *, timeout: float) -> None:
        self.destinations = destinations
        self.forwarders = {name: forwarder_for(d, timeout) for name, d in destinations.items()}

    def send(self, destination: str, data: bytes) -> SendResult:
        return self.forwarders[destination].send_bytes(self.destinations[destination], data)

    def submit(self, destination: str, data: bytes) -> Pending:
        return Pending(destination, data, answer=self.send(destination, data))

    def result(self, pending: Pending) -> SendResult:
        assert pending.answer is not None
        return pending.answer

    def close(self) -> None:
        for forwarder in self.forwarders.values():
            forwarder.close()


def forwarder_for(destination: Any, timeout: float) -> Any:
    """What sends to ``destination``: a C-STORE Forwarder, or for a DICOMweb destination
    (deid.stow.StowDestination) a STOW-RS one, for an output folder
    (deid.folder_destination.FolderDestination) a folder writer; each answers ``send_bytes``
    with a SendResult."""
    if isinstance(destination, FolderDestination):
        return FolderForwarder([destination], timeout=timeout)
    if not isinstance(destination, Destination):
        from deid.stow import StowForwarder

        return StowForwarder([destination], timeout=timeout)
    return Forwarder([destination], timeout=timeout)


@dataclass(frozen=True)
class SenderLine:
    """The pipes of one destination's sender, a pair per worker slot: its requests
    ``(slot, ticket, block, size)`` (the object is the first ``size`` bytes of the shared memory
    block named ``block``, or ``block`` itself when it is bytes) and its answers
    ``(ticket, outcome, status, detail)``; and the node's own pipe, whose ``None`` stops one
    sending thread.

    A process killed at any moment (a worker on a poison object, the kernel's out-of-memory
    killer) leaves nothing another one waits for: no lock is shared between processes. Each
    pipe has one writer and one reader process: a worker writes its requests whole itself
    (``multiprocessing.Queue`` wrote from a thread of its own, under a lock every worker shared: a
    worker that died while that thread wrote left the lock taken for good, and the line stalled)
    and reads its answers after ``poll`` (``Queue.get`` waited holding the slot's read lock: a
    worker killed waiting left the one started in its place no answer ever); the sender's
    threads take turns within their process."""

    destination: str
    requests: tuple[Any, ...]  # read ends (the sender's): one per worker slot, then the node's
    submit: tuple[Any, ...]  # the write ends of those
    replies: tuple[Any, ...]  # each slot's answers: read ends (its worker's)
    reply_to: tuple[Any, ...]  # the write ends of those (the sender's)

    def put(self, slot: int, request: tuple[int, str, str | bytes, int]) -> None:
        """Write a request of the worker in ``slot`` to the sender."""
        self.submit[slot].send(request)

    def stop(self, threads: int = 1) -> None:
        """Stop ``threads`` of the sender's sending threads (the node, when it stops)."""
        for _ in range(threads):
            self.submit[-1].send(None)


class HandOff:
    """A worker's shared memory block for one destination, into which it copies each object it
    hands to that destination's sender (the module docstring).  ``clean``: its last request was
    answered (the block may be written again).  Its name is removed once the sender has opened
    it (its first answer): a node killed outright leaves no block behind, and a sender started
    again, which cannot open it any more, has the worker move to a new block."""

    def __init__(self) -> None:
        self.block: SharedMemory | None = None
        self.clean = True
        self.named = False

    def put(self, data: bytes | memoryview) -> str | None:
        """Copy ``data`` into the block (a new one when there is none, it is too small, or it
        is not clean); returns the block's name, or None when no block of that size can be had
        (/dev/shm too small for it, as a container's 64 MiB may be: the object then goes
        through the request pipe)."""
        size = len(data)
        if self.block is None or self.block.size < size or not self.clean:
            self.close()
            room = max(_BLOCK_BYTES, 1 << (size - 1).bit_length())  # doubling: few new blocks
            try:
                block = SharedMemory(create=True, size=room)
            except OSError:
                return None
            try:  # its pages taken now: a full /dev/shm is an error here, never a SIGBUS later
                os.posix_fallocate(block._fd, 0, room)  # type: ignore[attr-defined]
            except OSError:
                block.unlink()
                _close(block)
                return None
            self.block, self.named = block, True
        self.block.buf[:size] = data
        self.clean = False
        return self.block.name

    def answered(self, withdrawn: bool) -> None:
        """The sender answered the last request: it has the block open (its name can go), or
        it could not open it (``withdrawn``: the next object goes into a new block)."""
        if withdrawn:
            self.close()
            return
        self.clean = True
        self._unname()

    def close(self) -> None:
        """Let go of the block (its memory goes once the sender, too, has let go of it)."""
        self._unname()
        block, self.block = self.block, None
        if block is not None:
            _close(block)

    def _unname(self) -> None:
        if self.block is not None and self.named:
            self.named = False
            try:
                self.block.unlink()
            except FileNotFoundError:
                pass


class SharedSender:
    """A worker's side of the senders: hands an object over in its :class:`HandOff` block for the
    destination, puts the request on the destination's line and waits for the answer with its
    ticket (``wait`` seconds plus time for the object's size, then retry).  An object the sender
    could not open (a sender started again since) is handed over once more, in a new block.

    An object no block can be had for goes through a file in ``spill`` (the node's outgoing
    folder), named in a request as small as the others; without ``spill``, through the request
    pipe itself (several writes: a worker killed among them would leave the sender waiting)."""

    def __init__(self, lines: dict[str, SenderLine], slot: int, name: str, *, wait: float,
                 spill: Path | None = None) -> None:
        self.lines = lines
        self.slot = slot
        self.name = name  # unique per worker process: tickets of a restarted worker never collide
        self.wait = wait
        self.spill = spill
        self.tickets = itertools.count(1)
        self.hand_offs = {destination: HandOff() for destination in lines}

    def send(self, destination: str, data: bytes) -> SendResult:
        return self.result(self.submit(destination, data))

    def submit(self, destination: str, data: bytes) -> Pending:
        """Hand ``data`` to the destination's sender; returns at once (one request per
        destination at a time: :meth:`result` before the next ``submit`` there)."""
        line, hand_off = self.lines[destination], self.hand_offs[destination]
        number = next(self.tickets)
        ticket = f"{self.name}:{number}"
        block: str | bytes | tuple[str, str] | None = hand_off.put(data)
        spilled = ""
        if block is None and self.spill is not None:
            try:
                spilled = _spill(self.spill / f".send-{self.slot}-{os.getpid()}-{number}", data)
                block = (SPILLED, spilled)
            except OSError:
                pass  # the outgoing folder refuses it (full?): through the request pipe instead
        line.put(self.slot, (self.slot, ticket, block if block is not None else bytes(data),
                             len(data)))
        deadline = time.monotonic() + self.wait + len(data) / _SLOWEST_RATE
        return Pending(destination, data, ticket, deadline, spilled=spilled)

    def result(self, pending: Pending) -> SendResult:
        """The answer to ``pending`` (handed over once more, in a new block, when the sender
        could not open its block); a retry when none comes in time."""
        result = self._answer(pending)
        if result.detail == WITHDRAWN:
            result = self._answer(self.submit(pending.destination, pending.data))
        return result

    def _answer(self, pending: Pending) -> SendResult:
        try:
            return self._wait_for(pending)
        finally:
            if pending.spilled:  # (the sender removes it once read; this, if it never was)
                Path(pending.spilled).unlink(missing_ok=True)

    def _wait_for(self, pending: Pending) -> SendResult:
        line, hand_off = self.lines[pending.destination], self.hand_offs[pending.destination]
        replies = line.replies[self.slot]
        while (remaining := pending.deadline - time.monotonic()) > 0:
            if not replies.poll(remaining):
                break
            answer, outcome, status, detail = replies.recv()
            if answer == pending.ticket:
                if not pending.spilled:
                    hand_off.answered(withdrawn=detail == WITHDRAWN)
                return SendResult(outcome, status, detail)
            # the late answer to a request an earlier worker in this slot gave up on: dropped
        return SendResult(RETRY, None, "no answer from the destination's sender within the timeout")

    def close(self) -> None:
        """Let go of the hand-off blocks (the sender owns the association)."""
        for hand_off in self.hand_offs.values():
            hand_off.close()


def make_lines(context: Any, destinations: list[str], workers: int) -> dict[str, SenderLine]:
    """One line (a request pipe and an answer pipe per worker slot, the node's pipe) per
    destination."""
    lines = {}
    for name in destinations:
        requests = [context.Pipe(duplex=False) for _ in range(workers + 1)]
        for _read, write in requests:
            _wide(write)
        answers = [context.Pipe(duplex=False) for _ in range(workers)]
        lines[name] = SenderLine(name, tuple(read for read, _ in requests),
                                 tuple(write for _, write in requests),
                                 tuple(read for read, _ in answers),
                                 tuple(write for _, write in answers))
    return lines


def _wide(submit: Any) -> None:
    """Linux: the request pipe holds a whole released object (1 MiB, the default
    ``pipe-max-size``; an object no shared block could be had for comes through it), so the
    worker writes it at once and the sender reads it in one go, not 64 KiB at a time in turn
    with the writer (~1 ms per 512 KB object)."""
    try:
        import fcntl

        fcntl.fcntl(submit.fileno(), 1031, _PIPE_BYTES)  # F_SETPIPE_SZ
    except (ImportError, AttributeError, OSError):
        pass  # elsewhere, or a lower limit: the default pipe, only slower


def sender_main(
    destination: Destination, line: SenderLine, associations: int, timeout: float, parent: int,
    latency: Any = None,
) -> None:
    """A sender process: ``associations`` threads, each with its own association to the
    destination, take requests from the line until each is handed a ``None``."""
    from deid.service import _die_with_parent

    _die_with_parent(parent)
    name_process(b"deid-sender")  # /proc/PID/comm, as ps and top show it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the node stops us after its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.configure()
    blocks = _Blocks()
    requests = _Requests(line)
    answering = threading.Lock()  # the sending threads answer in turn
    threads = [
        threading.Thread(target=_send_loop,
                         args=(destination, line, timeout, latency, blocks, requests, answering),
                         daemon=True)
        for _ in range(max(1, associations))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    blocks.close()


def name_process(name: bytes) -> None:
    """Linux: the name ps and top show for this process (PR_SET_NAME); elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(15, name, 0, 0, 0)
    except (OSError, AttributeError):
        pass


SPILLED = "spilled"  # a request's block is (SPILLED, path) when the object came through a file


def _spill(path: Path, data: bytes | memoryview) -> str:
    """Write ``data`` to a new owner-only file ``path`` for the sender; returns its name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with memoryview(data) as view:
            written = 0
            while written < len(view):
                written += os.write(fd, view[written:])
    except OSError:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    return str(path)


def _unspill(path: str, size: int) -> bytes:
    """The object a worker spilled to ``path`` (the file removed once read); OSError when it
    is gone (its worker gave up on it) or cut short."""
    with open(path, "rb") as handle:
        data = handle.read()
    os.unlink(path)
    if len(data) != size:
        raise OSError("spilled object cut short")
    return data


class _Requests:
    """The sender's side of a line's request pipes, read by its sending threads in turn: the
    next request of any worker slot, the slots served in rotation (none waits behind a busy
    one), or the node's ``None``."""

    def __init__(self, line: SenderLine) -> None:
        self.pipes = list(line.requests)
        self.last = -1  # the slot served last
        self.lock = threading.Lock()

    def next(self) -> tuple[int, str, str | bytes, int] | None:
        with self.lock:
            ready = set(map(id, connection.wait(self.pipes)))
            count = len(self.pipes)
            for step in range(1, count + 1):
                index = (self.last + step) % count
                if id(self.pipes[index]) in ready:
                    self.last = index
                    return self.pipes[index].recv()
            raise AssertionError("wait returned no pipe")  # (wait returns only ready ones)


def _send_loop(destination: Destination, line: SenderLine, timeout: float, latency: Any,
               blocks: _Blocks, requests: _Requests, answering: threading.Lock) -> None:
    """Send what the workers hand over, one object at a time; each send's time goes to ``latency``
    (deid.metrics.SendLatency, shared with the node's /metrics) when given."""
    with forwarder_for(destination, timeout) as forwarder:
        raw = isinstance(forwarder, Forwarder)  # sends from a view; other kinds want bytes
        while True:
            request = requests.next()
            if request is None:
                return
            slot, ticket, block, size = request
            started = time.monotonic()
            try:  # (an object no block could be had for comes in a file, or the request itself)
                if isinstance(block, str):
                    view = blocks.view(slot, block, size)
                elif isinstance(block, tuple):
                    view = memoryview(_unspill(block[1], size))
                else:
                    view = memoryview(block)
            except OSError:  # its worker let go of it (gave up on it, or died)
                result = SendResult(RETRY, None, WITHDRAWN)
            else:
                try:
                    result = forwarder.send_bytes(destination, view if raw else bytes(view))
                finally:
                    view.release()
            if latency is not None:
                latency.observe(str(destination), result.outcome, time.monotonic() - started)
            with answering:
                line.reply_to[slot].send((ticket, result.outcome, result.status, result.detail))


class _Blocks:
    """The workers' hand-off blocks a sender has opened, one per worker slot (a slot's new block
    replaces its old one), shared by its sending threads: a worker removes a block's name once
    one of them has opened it."""

    def __init__(self) -> None:
        self.open: dict[int, SharedMemory] = {}
        self.lock = threading.Lock()

    def view(self, slot: int, name: str, size: int) -> memoryview:
        """The first ``size`` bytes of the block ``name`` (OSError when it cannot be opened)."""
        with self.lock:
            block = self.open.get(slot)
            if block is None or block.name != name:
                self._close(slot)
                # (Python < 3.13 registers it with the resource tracker again; the node's
                # processes share one tracker, whose entry goes when the worker unlinks it)
                block = self.open[slot] = SharedMemory(name=name)
            if size > block.size:
                raise OSError("hand-off block smaller than its object")
            return block.buf[:size]

    def _close(self, slot: int) -> None:
        block = self.open.pop(slot, None)
        if block is not None:
            _close(block)

    def close(self) -> None:
        with self.lock:
            for slot in list(self.open):
                self._close(slot)


def _close(block: SharedMemory) -> None:
    """Unmap ``block``; a view of it still alive somewhere keeps it mapped until it goes."""
    try:
        block.close()
    except BufferError:
        pass
