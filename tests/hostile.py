"""Hostile peers for the receiver: raw TCP sockets that connect and say nothing, close at once,
announce huge PDUs, or associate properly and then break the negotiated maximum.  All on the
loopback network (127.0.0.x: each address is another peer), each bounded in bytes and time."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import Verification
from servenode import NODE, SENDER

FOUR_GIB = 0xFFFFFFFF


def connect(port: int, peer: str = "127.0.0.1", timeout: float = 30) -> socket.socket:
    """A TCP connection to the node on 127.0.0.1:``port`` from the address ``peer``."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(peer, 0))


def knock(port: int, times: int, peer: str = "127.0.0.1") -> None:
    """Open and close ``times`` connections without a word (or a refused one: the same to us)."""
    for _ in range(times):
        try:
            connect(port, peer).close()
        except OSError:
            pass


def closed_by_node(sock: socket.socket, within: float) -> bool:
    """True when the node closes ``sock`` (end of stream or reset) within ``within`` seconds;
    whatever the node sends first (an A-ABORT, an A-ASSOCIATE-RJ) is read and ignored."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def turned_away(port: int, peer: str) -> bool:
    """True when a new connection from ``peer`` is closed by the node without a word from us."""
    sock = connect(port, peer)
    try:
        return closed_by_node(sock, within=15)
    finally:
        sock.close()


def pdu_header(pdu_type: int, length: int) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, length)


def stream_pdu(sock: socket.socket, pdu_type: int, length: int, limit: int) -> int:
    """Announce a PDU of ``length`` bytes and send zeros until the node stops taking them or
    ``limit`` bytes went; returns the bytes the node took (at least in its socket buffers)."""
    chunk = bytes(1 << 20)
    sent = 0
    sock.settimeout(10)
    try:
        sock.sendall(pdu_header(pdu_type, length))
        while sent < limit:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # reset, broken pipe, or a full window that nobody drains (timeout)
        pass
    return sent


def associate_rq(calling: str = SENDER, called: str = NODE, max_pdu: int = 16382) -> bytes:
    """An A-ASSOCIATE-RQ PDU proposing Verification, as a real sender encodes it."""
    context = build_context(Verification)
    context.context_id = 1
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    primitive.presentation_context_definition_list = [context]
    length = MaximumLengthNotification()
    length.maximum_length_received = max_pdu
    primitive.user_information = [length]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    """The next PDU from the node: its type and whole bytes."""
    header = _read_exactly(sock, 6)
    pdu_type, _, length = struct.unpack(">BBL", header)
    return pdu_type, header + _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        part = sock.recv(count - len(data))
        if not part:
            raise ConnectionError("closed by the node")
        data += part
    return bytes(data)


@contextmanager
def associated(port: int, peer: str = "127.0.0.1") -> Iterator[tuple[socket.socket, int]]:
    """A raw socket with an accepted association; yields it and the node's maximum PDU length."""
    sock = connect(port, peer)
    try:
        sock.sendall(associate_rq())
        pdu_type, data = read_pdu(sock)
        assert pdu_type == 0x02, f"association not accepted (PDU type 0x{pdu_type:02x})"
        accept = A_ASSOCIATE_AC()
        accept.decode(data)
        primitive = accept.to_primitive()
        (limit,) = [
            item.maximum_length_received
            for item in primitive.user_information
            if isinstance(item, MaximumLengthNotification)
        ]
        yield sock, limit
    finally:
        sock.close()
