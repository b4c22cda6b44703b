"""The receiver's associations, made to answer each object as soon as it is durable.

A sender that waits for each answer before it sends the next object (``storescu``, most
modalities) pays every delay between "the last byte has arrived" and "the answer has left" once
per object.  :class:`IntakeRequestHandler` builds each association as pynetdicom does, then

- makes it wait for events instead of polling (:func:`deid.pynetdicom_waits.wait_for_events`:
  its threads wake the moment data, a message or an answer to send is there; PDUs read whole);
- with the receiver's ``store_object``, reads its C-STORE requests and answers them in its DUL
  thread, from the PDUs' bytes (:mod:`deid.intake.pdata`); what that leaves to pynetdicom
- encodes a C-STORE response that carries a status only itself (:func:`store_response`, the
  same bytes as pynetdicom's, which builds a pydicom data set for it) and queues it to the DUL as
  pynetdicom queues its own (one writer of the socket, order kept); any other message goes
  pynetdicom's way.

:func:`object_parts` gives a received object as Part 10 bytes without copying its data set.
With a pynetdicom other than 3.0 the associations are left as pynetdicom makes them.
"""

from __future__ import annotations

import copy
from io import BytesIO
from typing import Any

from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import RequestHandler

from deid.intake.pdata import (
    Store,
    file_meta_prefix,
    plain_uid,
    read_data_directly,
    store_response_command,
)
from deid.pynetdicom_waits import SUPPORTED, wait_for_events


class IntakeRequestHandler(RequestHandler):
    """pynetdicom's request handler, whose associations are then :func:`quicken`-ed; with the
    server's ``store_object`` (deid.intake.pdata.Store), when it has one, their C-STORE requests
    are read and answered in the DUL thread (deid.intake.pdata)."""

    def _create_association(self) -> Any:
        association = super()._create_association()
        quicken(association, getattr(getattr(self, "server", None), "store_object", None))
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


def quicken(association: Any, store: Store | None = None) -> None:
    """Make a new acceptor ``association`` (its threads not started yet) wait for events and
    encode its status-only C-STORE responses itself (module docstring); with ``store``, its
    DUL thread serves C-STORE requests itself (:func:`deid.intake.pdata.read_data_directly`)."""
    if not wait_for_events(association):
        return  # another pynetdicom: as it is
    if store is not None:
        read_data_directly(association, store)
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
    sop_class = plain_uid(primitive.AffectedSOPClassUID)
    sop_instance = plain_uid(primitive.AffectedSOPInstanceUID)
    if not isinstance(status, int) or sop_class is None or sop_instance is None:
        return None
    return store_response_command(sop_class, sop_instance, answered, status)


# -- the received object ------------------------------------------------------------------------


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
    sop_class = plain_uid(request.AffectedSOPClassUID)
    sop_instance = plain_uid(request.AffectedSOPInstanceUID)
    syntax = plain_uid(str(event.context.transfer_syntax))
    if sop_class is None or sop_instance is None or syntax is None:
        return b"", event.encoded_dataset(include_meta=True)
    return file_meta_prefix(sop_class, sop_instance, syntax), request.DataSet.getbuffer()
