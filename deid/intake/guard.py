"""The receiver's door: who may hold a connection that has not associated yet, for how long, and
how large a PDU anyone may send.

pynetdicom gives every TCP connection an association thread from the moment it is accepted, counts
it towards ``maximum_associations`` and, before the A-ASSOCIATE-RQ, reads whatever PDU length the
peer announces.  A :class:`Gate` sits in front of it:

- a connection that has not associated yet holds a *slot*: at most ``per_address`` from one
  address and ``total`` in all (more are closed at once); the slot is freed the moment the peer
  closes, and the connection is cut ``handshake_timeout`` seconds after it was accepted;
- an address that has sent an allowed association before (or is named in ``allow``) is *known*:
  its connections have their own slots (up to ``max_associations`` each) and never compete with
  strangers for theirs, so strangers cannot starve an authorised sender;
- an allowed association moves out of the slots into the ``max_associations`` count;
- a PDU announcing more than ``FIRST_PDU_MAX`` bytes before the association, or more than our
  negotiated maximum after it, closes the connection before its body is read.

:class:`GuardedServer` is the pynetdicom association server (built with ``AE.make_server``) that
applies the gate; sockets are :class:`GuardedSocket` / :class:`GuardedSSLSocket`, whose ``recv``
frames the PDUs.  The TLS handshake runs in the connection's own thread, under the handshake
timeout, never in the thread that accepts connections.
"""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from deid import logs

# the largest A-ASSOCIATE-RQ (or any PDU before the association) we read: four times the request
# of a sender proposing 128 presentation contexts with 18 transfer syntaxes each (63,898 bytes)
FIRST_PDU_MAX = 256 * 1024
KNOWN_ADDRESSES_KEPT = 256  # addresses remembered as having associated (least recent forgotten)
_HEADER = 6  # PDU type, reserved, 4-byte length


@dataclass(frozen=True)
class Limits:
    """What the gate allows; see the module docstring."""

    per_address: int = 4
    total: int = 16
    handshake_timeout: float = 5.0
    max_associations: int = 10
    max_pdu: int = 16382
    network_timeout: float = 120.0  # a read stalled this long ends the connection


def _log(level: str, event: str, **fields: object) -> None:
    """Log; a logging failure must never change what happens to a connection."""
    try:
        getattr(logs.get_logger("deid.intake"), level)(event, **fields)
    except Exception:  # noqa: BLE001, S110
        pass


class Ticket:
    """One accepted connection: its peer, its deadline, whether it has associated, and the PDU
    framing state of what it has sent so far."""

    def __init__(self, gate: Gate, host: str, key: tuple[str, int], known: bool) -> None:
        self.gate = gate
        self.host = host
        self.key = key
        self.known = known
        self.deadline = time.monotonic() + gate.limits.handshake_timeout
        self.associated = False
        self.released = False
        self.refused = False  # a PDU over the limit was announced: nothing more is read
        self.socket: socket.socket | None = None
        self._header = bytearray()
        self._remaining = 0  # bytes of the current PDU's body still to come

    def pdu_limit(self) -> int:
        return self.gate.limits.max_pdu if self.associated else FIRST_PDU_MAX

    def frame(self, data: bytes) -> bool:
        """Follow the PDU boundaries in ``data``; False when a header announces a PDU longer than
        the limit (its body is then never read)."""
        view = memoryview(data)
        at = 0
        while at < len(view):
            if self._remaining:
                step = min(self._remaining, len(view) - at)
                self._remaining -= step
                at += step
                continue
            need = _HEADER - len(self._header)
            self._header += view[at : at + need]
            at += need
            if len(self._header) == _HEADER:
                length = int.from_bytes(self._header[2:], "big")
                self._header.clear()
                if length > self.pdu_limit():
                    return False
                self._remaining = length
        return True

    def cut(self) -> None:
        """Shut the connection down under whoever is reading it (the reader sees end of stream)."""
        sock = self.socket
        if sock is None:
            return
        try:
            # the plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its SSL
            # object under a thread that is reading from it
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass


class Gate:
    """The counts of connections not yet associated (per address, in all) and of associations,
    and the thread that cuts connections whose handshake time is up."""

    def __init__(self, limits: Limits, known: tuple[str, ...] = ()) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._tickets: dict[tuple[str, int], Ticket] = {}
        self._per_address: Counter[str] = Counter()
        self._strangers = 0  # connections not yet associated from addresses not known
        self._associations = 0
        self._known: OrderedDict[str, None] = OrderedDict((host, None) for host in known)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None

    # -- admission ----------------------------------------------------------------------------

    def admit(self, address: Any) -> Ticket | None:
        """A ticket for a new connection from ``address`` (host, port, ...), or None (refused,
        logged once) when its address or the strangers together hold every slot.  Before
        refusing, slots of peers that have already closed are freed (their reader may not have
        noticed yet)."""
        host, port = str(address[0]), int(address[1])
        for first in (True, False):
            with self._lock:
                known = host in self._known
                why = self._full(host, known)
                if not why:
                    ticket = Ticket(self, host, (host, port), known)
                    self._tickets[ticket.key] = ticket
                    self._per_address[host] += 1
                    self._strangers += 0 if known else 1
                    self._wake.set()
                    return ticket
                suspects = [
                    t for t in self._tickets.values()
                    if not t.associated and (t.host == host or not (known or t.known))
                ]
            if first:
                for ticket in suspects:
                    if _peer_gone(ticket.socket):
                        self.release(ticket)
        _log("warning", f"connection refused: {why}", code="unassociated-limit", peer=host)
        return None

    def _full(self, host: str, known: bool) -> str:
        """Why a new connection from ``host`` finds no slot ("" when it finds one)."""
        cap = max(self.limits.per_address, self.limits.max_associations) if known else (
            self.limits.per_address
        )
        if self._per_address[host] >= cap:
            return "too many connections from this address not yet associated"
        if not known and self._strangers >= self.limits.total:
            return "too many connections not yet associated"
        return ""

    def authorise(self, host: str, port: int) -> bool:
        """An allowed caller on connection ``(host, port)`` asks to associate: move it from the
        slots to the associations; False when ``max_associations`` are already under way."""
        with self._lock:
            ticket = self._tickets.get((str(host), int(port)))
            if ticket is None or ticket.released:
                return False  # its connection has gone (or was never admitted): fail closed
            if ticket.associated:
                return True
            if self._associations >= self.limits.max_associations:
                return False
            self._unslot(ticket)
            ticket.associated = True
            self._associations += 1
            self._known[ticket.host] = None
            self._known.move_to_end(ticket.host)
            while len(self._known) > KNOWN_ADDRESSES_KEPT:
                self._known.popitem(last=False)
        return True

    def release(self, ticket: Ticket) -> None:
        """The connection has ended (or is being cut): free what it held.  Idempotent."""
        with self._lock:
            if ticket.released:
                return
            ticket.released = True
            if self._tickets.get(ticket.key) is ticket:  # (not a later connection from that port)
                del self._tickets[ticket.key]
            if ticket.associated:
                self._associations -= 1
            else:
                self._unslot(ticket)

    def _unslot(self, ticket: Ticket) -> None:
        self._per_address[ticket.host] -= 1
        if self._per_address[ticket.host] <= 0:
            del self._per_address[ticket.host]
        if not ticket.known:
            self._strangers -= 1

    def refuse_pdu(self, ticket: Ticket) -> None:
        """A PDU over the limit was announced: cut the connection, without reading the PDU."""
        ticket.refused = True
        stage = "after" if ticket.associated else "before"
        _log("warning", f"connection closed: PDU larger than allowed {stage} association",
             code="pdu-too-large", peer=ticket.host)
        ticket.cut()
        self.release(ticket)

    def cut_unassociated(self) -> None:
        """Cut every connection not associated yet (their threads end on the end of stream)."""
        with self._lock:
            tickets = [t for t in self._tickets.values() if not t.associated]
        for ticket in tickets:
            ticket.cut()
            self.release(ticket)

    def counts(self) -> dict[str, int]:
        """Connections not yet associated (all, and strangers') and associations, now."""
        with self._lock:
            unassociated = sum(self._per_address.values())
            return {"unassociated": unassociated, "strangers": self._strangers,
                    "associations": self._associations}

    # -- the handshake deadline -------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = threading.Thread(target=self._sweep, name="deid-receiver-gate", daemon=True)
        self._sweeper.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _sweep(self) -> None:
        """Cut each connection still not associated at its deadline."""
        while not self._stopped.is_set():
            now = time.monotonic()
            with self._lock:
                tickets = list(self._tickets.values())
            late = [t for t in tickets if not t.associated and t.deadline <= now]
            for ticket in late:
                _log("warning", "connection closed: no association within the handshake timeout",
                     code="handshake-timeout", peer=ticket.host)
                ticket.cut()
                self.release(ticket)
            waiting = [t.deadline for t in tickets if not t.associated and t not in late]
            pause = min([d - now for d in waiting] + [1.0])
            self._wake.wait(max(pause, 0.05))
            self._wake.clear()


def _peer_gone(sock: socket.socket | None) -> bool:
    """True when the peer of ``sock`` has closed or reset the connection, by ``poll`` alone:
    nothing is read and nothing waits (Linux; elsewhere nobody is taken for gone)."""
    hung_up = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR | select.POLLNVAL
    if sock is None or not getattr(select, "POLLRDHUP", 0):
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), hung_up)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class _GuardedRecv:
    """``recv`` that frames PDUs for the gate and frees the connection's slot at end of stream.
    Errors are end of stream to pynetdicom (it closes the association, never reads more)."""

    ticket: Ticket | None = None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        ticket = self.ticket
        if ticket is None:
            return super().recv(bufsize, flags)  # type: ignore[misc]
        if ticket.refused:
            return b""
        try:
            data: bytes = super().recv(bufsize, flags)  # type: ignore[misc]
        except (OSError, ValueError):
            data = b""
        if not data:
            ticket.gate.release(ticket)
            return b""
        if not ticket.frame(data):
            ticket.gate.refuse_pdu(ticket)
            return b""
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """``recv`` into ``buffer`` (deid.intake.acceptor reads PDUs so), framed the same way."""
        nbytes = nbytes or len(buffer)  # (SSLSocket reads nothing when told 0)
        ticket = self.ticket
        if ticket is None:
            return super().recv_into(buffer, nbytes, flags)  # type: ignore[misc]
        if ticket.refused:
            return 0
        try:
            count: int = super().recv_into(buffer, nbytes, flags)  # type: ignore[misc]
        except (OSError, ValueError):
            count = 0
        if not count:
            ticket.gate.release(ticket)
            return 0
        with memoryview(buffer) as view:
            framed = ticket.frame(view[:count])
        if not framed:
            ticket.gate.refuse_pdu(ticket)
            return 0
        return count

    def close(self) -> None:
        if self.ticket is not None:
            self.ticket.gate.release(self.ticket)
        super().close()  # type: ignore[misc]


class GuardedSocket(_GuardedRecv, socket.socket):
    """A plain TCP connection under the gate."""

    @classmethod
    def adopt(cls, sock: socket.socket) -> GuardedSocket:
        """The accepted ``sock`` as a GuardedSocket (the same file descriptor)."""
        return cls(sock.family, sock.type, sock.proto, fileno=sock.detach())


class GuardedSSLSocket(_GuardedRecv, ssl.SSLSocket):
    """A TLS connection under the gate (``SSLContext.sslsocket_class``)."""


class GuardedServer(ThreadedAssociationServer):
    """pynetdicom's threaded association server with the :class:`Gate` at the door; build it with
    ``ae.make_server(..., server_class=GuardedServer, gate=..., tls=...)``."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, *args: Any, gate: Gate, tls: ssl.SSLContext | None = None,
                 **kwargs: Any) -> None:
        self.gate = gate
        self.tls = tls
        if tls is not None:
            tls.sslsocket_class = GuardedSSLSocket
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept (no TLS here: a silent peer must not hold the accepting thread)."""
        sock, address = self.socket.accept()
        return GuardedSocket.adopt(sock), address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit the connection or close it (socketserver closes a refused request)."""
        ticket = self.gate.admit(client_address)
        if ticket is None:
            return False
        request.ticket = ticket
        ticket.socket = request
        request.settimeout(self.gate.limits.network_timeout)
        return True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """In the connection's own thread: the TLS handshake (under the deadline), then
        pynetdicom's association."""
        if self.tls is not None:
            request = self._tls_handshake(request)
            if request is None:
                return
        super().process_request_thread(request, client_address)

    def _tls_handshake(self, plain: GuardedSocket) -> GuardedSSLSocket | None:
        ticket = plain.ticket
        assert ticket is not None and self.tls is not None
        try:
            wrapped = self.tls.wrap_socket(plain, server_side=True, do_handshake_on_connect=False)
            wrapped.ticket = ticket
            ticket.socket = wrapped
            wrapped.settimeout(max(ticket.deadline - time.monotonic(), 0.01))
            wrapped.do_handshake()
            wrapped.settimeout(self.gate.limits.network_timeout)
            return wrapped
        except (OSError, ValueError):
            if not ticket.released:
                _log("warning", "connection closed: TLS handshake failed or timed out",
                     code="tls-handshake-failed", peer=ticket.host)
            ticket.cut()
            try:
                (ticket.socket or plain).close()
            except OSError:
                pass
            self.gate.release(ticket)
            return None

    def shutdown(self) -> None:
        """Stop accepting and close the port (this server is not in the AE's list of servers)."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()
        self.gate.stop()


def wake_on_early_close(event: Any) -> None:
    """``EVT_CONN_CLOSE``: when a peer leaves before its A-ASSOCIATE-RQ, pynetdicom's acceptor
    thread still waits the whole ACSE timeout for a request that cannot come.  Hand it what a
    timeout would hand it (nothing), so the thread ends now."""
    try:
        assoc = event.assoc
        if assoc.is_acceptor and not assoc.is_established and assoc.requestor.primitive is None:
            assoc.dul.to_user_queue.put(None)
    except Exception:  # noqa: BLE001, S110  (a notification handler must not disturb pynetdicom)
        pass
