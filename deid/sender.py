"""Destinations shared by every worker: one sender process per destination owns its association.

A node worker hands an object's released bytes to the destination's sender (a multiprocessing
queue) and waits for the answer; the sender sends them over its association (one at a time, or
``associations`` at once), in the order they came, and answers the worker that asked with the
forwarder's outcome (done, retry, failed: :func:`deid.forward.classify`).  A peer that takes one
association at a time (a plain ``storescp``, a small PACS) so serves every worker at full speed,
and no worker holds an association another one waits out.

Nothing durable lives here: the spool keeps the original until every destination has answered
done, so a request or an answer lost with a sender that died is a retry, and a retry
de-identifies again to the same bytes.  A late answer to a request its worker gave up on is
dropped (each request carries a ticket); the peer may then have stored the object twice, under
the same SOP Instance UID, which a C-STORE SCP takes as the same object.
"""

from __future__ import annotations

import itertools
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from deid import logs
from deid.folder_destination import FolderDestination, FolderForwarder
from deid.forward import RETRY, Destination, Forwarder, SendResult

#: the largest object is given time for this rate (bytes/s), as the forwarder does
_SLOWEST_RATE = 1_000_000
#: the request pipe's size where the system allows it
_PIPE_BYTES = 1 << 20


class Sender(Protocol):
    """What a worker sends with: released bytes to a named destination, the outcome back."""

    def send(self, destination: str, data: bytes) -> SendResult: ...

    def close(self) -> None: ...


class LocalSender:
    """Sends from the calling process over its own associations (one worker, tests, tools)."""

    def __init__(self, destinations: dict[str, Destination], *, timeout: float) -> None:
        self.destinations = destinations
        self.forwarders = {name: forwarder_for(d, timeout) for name, d in destinations.items()}

    def send(self, destination: str, data: bytes) -> SendResult:
        return self.forwarders[destination].send_bytes(self.destinations[destination], data)

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
    """The queues of one destination's sender: requests ``(slot, ticket, bytes)`` from every
    worker (``None`` stops one sending thread), and one answer queue per worker slot holding
    ``(ticket, outcome, status, detail)``."""

    destination: str
    requests: Any
    replies: tuple[Any, ...]


class SharedSender:
    """A worker's side of the senders: puts a request on the destination's line and waits for
    the answer with its ticket (``wait`` seconds plus time for the object's size, then retry)."""

    def __init__(self, lines: dict[str, SenderLine], slot: int, name: str, *, wait: float) -> None:
        self.lines = lines
        self.slot = slot
        self.name = name  # unique per worker process: tickets of a restarted worker never collide
        self.wait = wait
        self.tickets = itertools.count(1)

    def send(self, destination: str, data: bytes) -> SendResult:
        line = self.lines[destination]
        ticket = f"{self.name}:{next(self.tickets)}"
        line.requests.put((self.slot, ticket, data))
        deadline = time.monotonic() + self.wait + len(data) / _SLOWEST_RATE
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                answer, outcome, status, detail = line.replies[self.slot].get(timeout=remaining)
            except queue.Empty:
                break
            if answer == ticket:
                return SendResult(outcome, status, detail)
            # the late answer to a request an earlier worker in this slot gave up on: dropped
        return SendResult(RETRY, None, "no answer from the destination's sender within the timeout")

    def close(self) -> None:
        """Nothing to release: the sender owns the association."""


def make_lines(context: Any, destinations: list[str], workers: int) -> dict[str, SenderLine]:
    """One line (request queue, an answer queue per worker slot) per destination."""
    return {
        name: SenderLine(
            name, _wide(context.Queue()), tuple(context.Queue() for _ in range(workers))
        )
        for name in destinations
    }


def _wide(requests: Any) -> Any:
    """Linux: the request queue's pipe holds a whole released object (1 MiB, the default
    ``pipe-max-size``), so the worker's queue thread writes it at once and the sender reads it
    in one go, not 64 KiB at a time in turn with the writer (~1 ms per 512 KB object)."""
    try:
        import fcntl

        fcntl.fcntl(requests._writer.fileno(), 1031, _PIPE_BYTES)  # F_SETPIPE_SZ
    except (ImportError, AttributeError, OSError):
        pass  # elsewhere, or a lower limit: the default pipe, only slower
    return requests


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
    threads = [
        threading.Thread(target=_send_loop, args=(destination, line, timeout, latency), daemon=True)
        for _ in range(max(1, associations))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def name_process(name: bytes) -> None:
    """Linux: the name ps and top show for this process (PR_SET_NAME); elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(15, name, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _send_loop(destination: Destination, line: SenderLine, timeout: float, latency: Any) -> None:
    """Send what the workers hand over, one object at a time; each send's time goes to ``latency``
    (deid.metrics.SendLatency, shared with the node's /metrics) when given."""
    with forwarder_for(destination, timeout) as forwarder:
        while True:
            request = line.requests.get()
            if request is None:
                return
            slot, ticket, data = request
            started = time.monotonic()
            result = forwarder.send_bytes(destination, data)
            if latency is not None:
                latency.observe(str(destination), result.outcome, time.monotonic() - started)
            line.replies[slot].put((ticket, result.outcome, result.status, result.detail))
