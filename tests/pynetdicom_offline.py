"""pynetdicom's own objects built without a network, for the intake's tests: a presentation
context, the C-STORE event a handler is given, an acceptor association on a socket pair."""

from __future__ import annotations

import socket
from io import BytesIO

from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import CTImageStorage
from pynetdicom.transport import AssociationSocket

CT = str(CTImageStorage)


def presentation_context(context_id: int, abstract_syntax: str, syntax: str) -> PresentationContext:
    """An accepted context: its id, SOP class and one transfer syntax."""
    context = PresentationContext()
    context.context_id = context_id
    context.abstract_syntax = abstract_syntax
    context.transfer_syntax = [syntax]
    return context


def store_request(sop_instance: str, body: bytes | None = None, *, sop_class: str = CT) -> C_STORE:
    """A C-STORE request of ``sop_instance`` (message 1), with the data set ``body`` if given."""
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = sop_instance
    if body is not None:
        request.DataSet = BytesIO(body)
    return request


def store_event(sop_instance: str, syntax: str, body: bytes, *, sop_class: str = CT) -> Event:
    """The EVT_C_STORE event pynetdicom gives a handler for a C-STORE request of ``sop_instance``
    whose data set ``body`` came in ``syntax`` on context 1 (its ``encoded_dataset`` is what
    pynetdicom would store)."""
    request = store_request(sop_instance, body, sop_class=sop_class)
    context = presentation_context(1, sop_class, syntax)
    return Event(None, evt.EVT_C_STORE, {"request": request, "context": context.as_tuple})


def offline_association(mode: str = "acceptor") -> tuple[Association, socket.socket]:
    """An association (``mode``: acceptor, as pynetdicom's request handler builds it, or
    requestor) on one end of a socket pair, its threads never started; the other end is the
    peer."""
    ours, peer = socket.socketpair()
    association = Association(AE(), mode)
    association.set_socket(AssociationSocket(association, client_socket=ours))
    return association, peer
