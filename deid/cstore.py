"""One C-STORE request sent as ready-made P-DATA-TF PDUs on an established pynetdicom association.

pynetdicom sends a data set as one P-DATA primitive per PDU, each queued to its reactor thread,
run through its state machine and encoded there: with a peer's 16 KB maximum PDU that is ~32
hand-offs between threads per 512 KB object; and it builds its command set as a pydicom data set
and reads the file meta with pydicom (together several ms per object).  Here the file meta is
read from memory, and the command set (seven fixed elements) and every PDU of the request are
framed in one buffer (PS3.8 9.3.5: PDU header, one PDV item per PDU, its message control header
saying command or data set and last fragment) and written to the association's socket at once;
the response is taken from its DIMSE queue: read by :class:`ResponseReader` when it carries a
status only (no pydicom data set, no trip through the state machine; installed by
:func:`read_responses`), else decoded by pynetdicom.  The state machine stays in Sta6 (sending
P-DATA changes no state), and a failed write closes the transport as pynetdicom's own send does
(Evt17).

:func:`keep_responses` closes a race in pynetdicom 3.0 (pinned) that lost about one response in a
thousand on a fast link: its ``send_c_store`` pauses the association's reactor loop by clearing a
checkpoint and waiting for a "paused" flag, but the flag is still set for a moment after the loop
has passed the checkpoint; the loop then takes the response off the queue itself (and drops it),
and the send waits out its DIMSE timeout (30 s) before the object is sent again.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from pynetdicom.dimse_primitives import C_STORE

from deid.pdus import COMMAND, LAST, PduReader, command_elements

#: PDU type 04 (P-DATA-TF), reserved, PDU length; PDV item length, context ID, control header
_PDV = struct.Struct(">BBIIBB")
#: fragment size when the peer sets no maximum PDU length (0: unlimited)
_UNLIMITED_FRAGMENT = 4 * 1024 * 1024
#: explicit VR little endian element header: group, element, VR, 16-bit length
_SHORT = struct.Struct("<HH2sH")
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})
#: what a Part 10 object's file meta says: (0002,0002), (0002,0003), (0002,0010)
_META_TAGS = {0x0002: "sop_class", 0x0003: "sop_instance", 0x0010: "transfer_syntax"}


class StoreResponse(NamedTuple):
    """A C-STORE response that carries a status only, as :class:`ResponseReader` reads it (its
    ``Status`` as pynetdicom's primitive names it)."""

    message_id: int
    Status: int


class FileMeta(NamedTuple):
    """The file meta of a Part 10 object in memory, and where its data set starts."""

    sop_class: str
    sop_instance: str
    transfer_syntax: str
    offset: int


def file_meta(data: bytes | memoryview) -> FileMeta:
    """The SOP class, instance and transfer syntax from the file meta (group 0002, explicit VR
    little endian, PS3.10 7.1) of ``data``, without parsing the data set; ValueError when it
    is not a Part 10 object or lacks one of the three."""
    view = memoryview(data)
    if bytes(view[128:132]) != b"DICM":
        raise ValueError("no DICM prefix")
    found: dict[str, str] = {}
    at = 132
    while at + 8 <= len(view):
        group, element, vr, length = _SHORT.unpack_from(view, at)
        if group != 0x0002:
            break
        start = at + 8
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", view, at + 8)
            start = at + 12
        if start + length > len(view):
            raise ValueError("file meta cut short")
        if element in _META_TAGS:
            value = bytes(view[start : start + length]).rstrip(b"\x00 ")
            found[_META_TAGS[element]] = value.decode("ascii")
        at = start + length
    if len(found) < len(_META_TAGS) or not all(found.values()):
        raise ValueError("file meta lacks a SOP class, instance or transfer syntax")
    return FileMeta(found["sop_class"], found["sop_instance"], found["transfer_syntax"], at)


def request_pdus(context_id: int, command: bytes, dataset: memoryview, max_pdu: int) -> bytearray:
    """The P-DATA-TF PDUs of one request: the command set, then the data set, each cut into
    fragments of at most ``max_pdu - 6`` bytes (one PDV item per PDU), framed in one buffer of
    their exact size (each byte copied once)."""
    size = max_pdu - 6 if max_pdu else _UNLIMITED_FRAGMENT
    bodies = (memoryview(command), dataset)
    count = sum(max(1, -(-len(body) // size)) for body in bodies)
    out = bytearray(len(command) + len(dataset) + count * _PDV.size)
    at = 0
    for control, body in zip((COMMAND, 0), bodies, strict=True):
        start, end = 0, len(body)
        while True:
            fragment = body[start : start + size]
            start += len(fragment)
            flags = control | (LAST if start >= end else 0)
            _PDV.pack_into(out, at, 0x04, 0, len(fragment) + 6, len(fragment) + 2, context_id,
                           flags)
            at += _PDV.size
            out[at : at + len(fragment)] = fragment
            at += len(fragment)
            if start >= end:
                break
    return out


def command_set(message_id: int, sop_class: str, sop_instance: str) -> bytes:
    """The C-STORE-RQ command set (PS3.7 9.3.1.1), implicit VR little endian as PS3.7 6.3.1
    requires: Affected SOP Class UID, Command Field 0x0001, Message ID, Priority (low, 0x0002,
    pynetdicom's default), Command Data Set Type (a data set follows), Affected SOP Instance UID;
    preceded by its group length."""
    body = (
        _uid(0x0002, sop_class)
        + _US.pack(0, 0x0100, 2, 0x0001)
        + _US.pack(0, 0x0110, 2, message_id)
        + _US.pack(0, 0x0700, 2, 0x0002)
        + _US.pack(0, 0x0800, 2, 0x0001)
        + _uid(0x1000, sop_instance)
    )
    return _UL.pack(0, 0x0000, 4, len(body)) + body


_US = struct.Struct("<HHIH")  # implicit VR: group, element, 32-bit length, value
_UL = struct.Struct("<HHII")


def _uid(element: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\x00"  # a UI value is padded with one NUL to an even length
    return struct.pack("<HHI", 0, element, len(value)) + value


def send_c_store(
    association: Any,
    dataset: memoryview,
    *,
    sop_class: str,
    sop_instance: str,
    transfer_syntax: str,
    message_id: int,
) -> Any:
    """Send ``dataset`` (encoded in ``transfer_syntax``, on an accepted context for ``sop_class``)
    and wait up to the association's DIMSE timeout for the response; returns the C-STORE
    response (its ``Status``: a :class:`StoreResponse`, or pynetdicom's primitive for one that
    carries more), or None when none came (the association is then aborted, or was already
    closed)."""
    if not association.is_established:
        raise RuntimeError("association closed before the object was sent")
    context = _context(association, sop_class, transfer_syntax)
    pdus = request_pdus(
        context,
        command_set(message_id, sop_class, sop_instance),
        dataset,
        int(association.acceptor.maximum_length or 0),
    )
    reader = association.dul._read_pdu_data
    reads = isinstance(reader, ResponseReader)
    if reads:
        reader.expecting = True  # (pynetdicom's own sends get pynetdicom's primitives)
    try:
        association.dul.socket.send(memoryview(pdus))
        _, response = association.dimse.get_msg(block=True)
    finally:
        if reads:
            reader.expecting = False
    if response is None:
        if association.is_established:  # the DIMSE timeout passed: abort, as pynetdicom does
            association.abort()
        return None
    if isinstance(response, StoreResponse):  # (read by ResponseReader)
        if response.message_id != message_id:
            association.abort()
            return None
        return response
    if not isinstance(response, C_STORE) or not response.is_valid_response:
        association.abort()  # as pynetdicom does with an unexpected or invalid response
        return None
    if response.MessageIDBeingRespondedTo != message_id:
        association.abort()
        return None
    return response


def _context(association: Any, sop_class: str, transfer_syntax: str) -> int:
    for context in association.accepted_contexts:
        if (
            str(context.abstract_syntax) == sop_class
            and str(context.transfer_syntax[0]) == transfer_syntax
            and getattr(context, "as_scu", True)
        ):
            return int(context.context_id)
    raise ValueError("no accepted presentation context for the object")


def keep_responses(association: Any) -> None:
    """Make the responses on ``association`` (one we requested, used only to send) reach only
    the thread that waits for them: its reactor loop looks for requests from the peer with a
    non-blocking ``get_msg``, which now finds none (a storage SCP sends us none)."""
    wait_for = association.dimse.get_msg

    def get_msg(block: bool = False) -> Any:
        return wait_for(block=True) if block else (None, None)

    association.dimse.get_msg = get_msg


# -- responses --------------------------------------------------------------------------------

#: the elements a status-only C-STORE response holds (PS3.7 9.3.1.2)
_RESPONSE_ELEMENTS = frozenset({0x0000, 0x0002, 0x0100, 0x0120, 0x0800, 0x0900, 0x1000})


class ResponseReader(PduReader):
    """Reads the answers on an association that sends C-STORE requests (deid.pdus): while
    :func:`send_c_store` awaits one, a C-STORE response that carries a status only, in one PDV,
    goes to the DIMSE queue as a :class:`StoreResponse` (no pydicom data set, no trip through
    pynetdicom's state machine); anything else (an error comment, an offending element, another
    message, the answer to a request pynetdicom sent) goes to pynetdicom as before, which queues
    its own primitive."""

    expecting = False  # a request sent by send_c_store awaits its answer

    def _item(self, context_id: int, value: memoryview) -> None:
        if self.handed or not self.expecting or value[0] != COMMAND | LAST:
            self._hand([(context_id, value)])
            return
        response = _store_response(bytes(value[1:]))
        if response is None:
            self._hand([(context_id, value)])
            return
        self.dimse.msg_queue.put((context_id, response))


def _store_response(command: bytes) -> StoreResponse | None:
    """A status-only C-STORE response's message ID and status, or None for any other command."""
    elements = command_elements(command, _RESPONSE_ELEMENTS)
    if elements is None:
        return None
    words = [elements.get(tag, b"") for tag in (0x0100, 0x0120, 0x0800, 0x0900)]
    if any(len(word) != 2 for word in words):
        return None
    field, answered, data_set, status = (int.from_bytes(word, "little") for word in words)
    if field != 0x8001 or data_set != 0x0101:
        return None
    return StoreResponse(answered, status)


def read_responses(association: Any) -> None:
    """Make ``association`` (one we requested, used only to send C-STORE requests, made to wait
    for events: deid.pynetdicom_waits) read its responses with a :class:`ResponseReader`."""
    ResponseReader(association).install()
