"""The receiver's associations, made to answer each object as soon as it is durable.

A sender that waits for each answer before it sends the next object (``storescu``, most
modalities) pays every delay between "the last byte has arrived" and "the answer has left" once
per object.  pynetdicom 3.0 (pinned) polls: its DUL thread sleeps 1 ms whenever a loop found
nothing to do, and its association thread, after each 1 ms sleep, only glances at the queue of
complete messages; it reads PDUs 4 KiB per ``recv``; it encodes each C-STORE response through a
pydicom data set; and its standard logging handlers, bound to every association, copy each
received data set to say that one is present.  :class:`IntakeRequestHandler` makes the receiver's
associations (built by pynetdicom as usual) do this instead, and nothing else:

- the DUL thread waits in ``select`` on the connection and on a wake-up socket that every
  primitive queued for it (an answer, the A-ASSOCIATE-AC, a release, an abort) pokes, for at most
  ``WAIT`` seconds; then it loops as pynetdicom's does (:class:`_WaitingSocket`);
- the association thread, finding no message, waits up to ``WAIT`` seconds for one, or for
  anything the DUL hands up to it (a release or abort request), instead of returning at once
  (:class:`_MessageQueue`);
- a PDU is read with as few ``recv_into`` calls as the network allows (one buffer, no 4 KiB
  pieces);
- a C-STORE response that carries a status only is encoded here (:func:`store_response`), the same
  bytes as pynetdicom's, and queued to the DUL as pynetdicom queues its own (one writer of the
  socket, order kept); any other message goes pynetdicom's way;
- pynetdicom's standard logging handlers are not bound (they log nothing deid shows, and their
  text quotes UIDs).

Timers, states and every decision stay pynetdicom's: the changes only shorten waits and copies.
Anything that is not woken (the ARTIM timer, a kill from another thread) is seen within ``WAIT``
seconds.  With a pynetdicom other than 3.0 the associations are left exactly as pynetdicom makes
them (slower, not wrong).

:func:`object_parts` gives a received object as Part 10 bytes without copying its data set.
"""

from __future__ import annotations

import queue
import re
import select
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pynetdicom
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket, RequestHandler

#: the pynetdicom whose internals this module was written against (tested); others are left alone
SUPPORTED = pynetdicom.__version__.startswith("3.0.")
#: the longest a thread waits before it looks again at what nothing wakes it for (seconds)
WAIT = 0.05
#: the DUL's pause before it picks up a primitive it was woken for (pynetdicom's default: 1 ms)
_LOOP_DELAY = 0.0001

_STANDARD_HANDLERS = (
    (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
)


class IntakeRequestHandler(RequestHandler):
    """pynetdicom's request handler, whose associations are then :func:`quickened`."""

    def _create_association(self) -> Any:
        association = super()._create_association()
        if SUPPORTED:
            quicken(association)
        return association


def quicken(association: Any) -> None:
    """Make a new acceptor ``association`` (its threads not started yet) wait for events rather
    than poll, read PDUs whole and encode plain C-STORE responses itself (module docstring)."""
    dul, dimse = association.dul, association.dimse
    for event, handler in _STANDARD_HANDLERS:
        association.unbind(event, handler)
    arrived = threading.Event()  # "something for the association thread"
    dimse.msg_queue = _MessageQueue(arrived)
    dul.to_user_queue = _Signalling(arrived.set)
    _WaitingSocket.adopt(dul.socket)
    dul.to_provider_queue = _Signalling(dul.socket.poke)
    dul._run_loop_delay = _LOOP_DELAY
    send_msg = dimse.send_msg

    def send_response(primitive: Any, context_id: int) -> None:
        limit = int(dimse.maximum_pdu_size or 0)
        command = store_response(primitive)
        if command is None or (limit and len(command) + 6 > limit):
            send_msg(primitive, context_id)  # pynetdicom's way
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
        dul.send_pdu(pdata)  # (control header 0x03: a command, its last fragment)

    dimse.send_msg = send_response


class _Signalling(queue.Queue):  # type: ignore[type-arg]
    """A queue that calls ``poke`` after each item is put."""

    def __init__(self, poke: Callable[[], None]) -> None:
        super().__init__()
        self._poke = poke

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._poke()


class _MessageQueue(_Signalling):
    """The association's queue of complete DIMSE messages.  pynetdicom's association thread asks
    it for a message without blocking once per loop (after a 1 ms sleep); here that question
    waits up to ``WAIT`` for ``arrived`` (set by a message, or by anything the DUL hands up), so
    a message is taken the moment it is complete.  A blocking ``get`` is pynetdicom's."""

    def __init__(self, arrived: threading.Event) -> None:
        super().__init__(arrived.set)
        self._arrived = arrived

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if block:
            return super().get(True, timeout)
        try:
            return super().get(False)
        except queue.Empty:
            pass
        self._arrived.wait(WAIT)
        self._arrived.clear()  # (the caller looks at every queue again after this)
        return super().get(False)


class _WaitingSocket(AssociationSocket):
    """pynetdicom's association socket, whose ``ready`` waits for data or a poke, and whose
    ``recv`` reads into one buffer."""

    _wake: socket.socket
    _waker: socket.socket

    @classmethod
    def adopt(cls, sock: AssociationSocket) -> None:
        """Make ``sock`` (built by pynetdicom, not used yet) one of these."""
        sock.__class__ = cls
        sock._wake, sock._waker = socket.socketpair()
        for end in (sock._wake, sock._waker):
            end.setblocking(False)

    def poke(self) -> None:
        """Wake the DUL thread (a primitive was queued for it)."""
        try:
            self._waker.send(b"\x00")
        except OSError:
            pass  # already poked (buffer full), or closed with the association

    @property
    def ready(self) -> bool:
        """True when data has arrived; otherwise waits up to ``WAIT`` for data or a poke (not
        when a primitive is already queued, nor in Sta13, where pynetdicom closes the
        connection once nothing more comes)."""
        sock = self.socket
        if sock is None or self._is_connected is False:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # (TLS holds decrypted data that select cannot see)
        dul = self.assoc.dul
        busy = dul.to_provider_queue.qsize() or dul.state_machine.current_state == "Sta13"
        try:
            readable, _, _ = select.select([sock, self._wake], [], [], 0 if busy else WAIT)
        except (OSError, TimeoutError, ValueError):
            self.event_queue.put("Evt17")  # as pynetdicom: the transport connection closed
            return False
        if self._wake in readable:
            try:
                self._wake.recv(4096)
            except OSError:
                pass
        return sock in readable

    def recv(self, nr_bytes: int) -> bytearray:
        """``nr_bytes`` from the connection (fewer only when it closed first), as pynetdicom's
        ``recv`` but read into one buffer."""
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        got = 0
        assert self.socket is not None
        while got < nr_bytes:
            count = self.socket.recv_into(view[got:])
            if not count:
                break
            got += count
        view.release()
        if got < nr_bytes:
            del buffer[got:]
        return buffer

    def close(self) -> None:
        super().close()
        for end in (self._wake, self._waker):
            end.close()


# -- C-STORE responses --------------------------------------------------------------------------

_PLAIN_UID = re.compile(r"[0-9.]{1,64}")
_UL = struct.Struct("<HHII")  # implicit VR little endian: group, element, length, value
_US = struct.Struct("<HHIH")


def store_response(primitive: Any) -> bytes | None:
    """The command set of a C-STORE response that carries a status only (PS3.7 9.3.1.2: group
    length, Affected SOP Class UID, Command Field 0x8001, Message ID Being Responded To, Command
    Data Set Type 0x0101, Status, Affected SOP Instance UID), byte for byte as pynetdicom encodes
    it; None for anything else (a request, an error comment, an offending element, a UID that is
    not digits and dots), which pynetdicom encodes."""
    if not isinstance(primitive, C_STORE) or primitive.MessageIDBeingRespondedTo is None:
        return None
    if primitive.ErrorComment is not None or primitive.OffendingElement is not None:
        return None
    status, answered = primitive.Status, primitive.MessageIDBeingRespondedTo
    sop_class = _plain_uid(primitive.AffectedSOPClassUID)
    sop_instance = _plain_uid(primitive.AffectedSOPInstanceUID)
    if not isinstance(status, int) or sop_class is None or sop_instance is None:
        return None
    body = b"".join((
        _uid(0x0002, sop_class),
        _US.pack(0, 0x0100, 2, 0x8001),
        _US.pack(0, 0x0120, 2, answered),
        _US.pack(0, 0x0800, 2, 0x0101),
        _US.pack(0, 0x0900, 2, status),
        _uid(0x1000, sop_instance),
    ))
    return _UL.pack(0, 0x0000, 4, len(body)) + body


def _plain_uid(value: Any) -> bytes | None:
    """``value`` as ASCII when it is a UID of digits and dots, 1 to 64 of them (anything else is
    left to pynetdicom and pydicom, as before)."""
    if not isinstance(value, str) or _PLAIN_UID.fullmatch(value) is None:
        return None
    return value.encode("ascii")


def _uid(element: int, value: bytes) -> bytes:
    """A group 0000 UI element, padded to an even length with one NUL."""
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHI", 0, element, len(value)) + value


# -- the received object ------------------------------------------------------------------------

_EXPLICIT_SHORT = struct.Struct("<HH2sH")  # explicit VR little endian: group, element, VR, length
_PREAMBLE = b"\x00" * 128 + b"DICM"


def object_parts(event: Any) -> tuple[bytes, memoryview | bytes]:
    """The object of a C-STORE ``event`` as Part 10 bytes: (preamble, prefix and file meta;
    the data set as received).  The file meta is pynetdicom's (``event.encoded_dataset``:
    version, SOP class and instance from the request, the context's transfer syntax,
    pynetdicom's implementation UID and version name), the same bytes, encoded here without a
    pydicom data set; the data set is not copied (release the view once written).  When a UID
    is not digits and dots pynetdicom encodes the whole (the data set is then one copy)."""
    request = event.request
    if not isinstance(request.DataSet, BytesIO):
        return b"", event.encoded_dataset(include_meta=True)
    sop_class = _plain_uid(request.AffectedSOPClassUID)
    sop_instance = _plain_uid(request.AffectedSOPInstanceUID)
    syntax = _plain_uid(str(event.context.transfer_syntax))
    if sop_class is None or sop_instance is None or syntax is None:
        return b"", event.encoded_dataset(include_meta=True)
    elements = b"".join((
        b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01",
        _meta_element(0x0002, b"UI", sop_class, b"\x00"),
        _meta_element(0x0003, b"UI", sop_instance, b"\x00"),
        _meta_element(0x0010, b"UI", syntax, b"\x00"),
        _meta_element(0x0012, b"UI", PYNETDICOM_IMPLEMENTATION_UID.encode("ascii"), b"\x00"),
        _meta_element(0x0013, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii"), b" "),
    ))
    group_length = _EXPLICIT_SHORT.pack(2, 0, b"UL", 4) + struct.pack("<I", len(elements))
    return _PREAMBLE + group_length + elements, request.DataSet.getbuffer()


def _meta_element(element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    return _EXPLICIT_SHORT.pack(2, element, vr, len(value)) + value
