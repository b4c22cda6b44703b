"""The receiver's associations, made to answer each object as soon as it is durable.

A sender that waits for each answer before it sends the next object (``storescu``, most
modalities) pays every delay between "the last byte has arrived" and "the answer has left" once
per object.  :class:`IntakeRequestHandler` builds each association as pynetdicom does, then

- makes it wait for events instead of polling (:func:`deid.pynetdicom_waits.wait_for_events`:
  its threads wake the moment data, a message or an answer to send is there; PDUs read whole);
- encodes a C-STORE response that carries a status only itself (:func:`store_response`, the
  same bytes as pynetdicom's, which builds a pydicom data set for it) and queues it to the DUL as
  pynetdicom queues its own (one writer of the socket, order kept); any other message goes
  pynetdicom's way.

:func:`object_parts` gives a received object as Part 10 bytes without copying its data set.
With a pynetdicom other than 3.0 the associations are left as pynetdicom makes them.
"""

from __future__ import annotations

import copy
import re
import struct
from io import BytesIO
from typing import Any

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import RequestHandler

from deid.pynetdicom_waits import SUPPORTED, wait_for_events


class IntakeRequestHandler(RequestHandler):
    """pynetdicom's request handler, whose associations are then :func:`quicken`-ed."""

    def _create_association(self) -> Any:
        association = super()._create_association()
        quicken(association)
        return association


class SharedContexts(list):  # type: ignore[type-arg]
    """The receiver's supported presentation contexts, which pynetdicom deep-copies for every
    association it accepts (171 contexts of up to 18 transfer syntaxes: 15.6 ms of CPU, paid once
    per object by a sender that opens an association for each).  pynetdicom 3.0's negotiation
    only reads them (``negotiate_as_acceptor`` builds the accepted contexts anew), so each
    association gets its own list of the same, never changed, context objects (under another
    pynetdicom: deep copies, as before)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        if not SUPPORTED:
            return [copy.deepcopy(context, memo) for context in self]
        return list(self)


def quicken(association: Any) -> None:
    """Make a new acceptor ``association`` (its threads not started yet) wait for events and
    encode its status-only C-STORE responses itself (module docstring)."""
    if not wait_for_events(association):
        return  # another pynetdicom: as it is
    dul, dimse = association.dul, association.dimse
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
