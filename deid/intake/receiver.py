"""The C-STORE receiver: a pynetdicom AE that only puts received objects on the spool.

Verification and every Storage SOP class, with the uncompressed and common compressed transfer
syntaxes accepted as proposed (pixel data is never decoded here).  A calling AE title (and,
when configured, host) not on the allow list is rejected at association.  A C-STORE is answered
success (0x0000) only once the object is durable in the spool; when the spool cannot take it the
answer is 0xA700 (out of resources), never success.

Connections are admitted by :mod:`deid.intake.guard` (bounded connections not yet associated,
a short handshake timeout, bounded PDUs); an allowed caller beyond ``max_associations`` is
rejected with "local limit exceeded".
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from pydicom import uid as uids
from pynetdicom import AE, evt
from pynetdicom.sop_class import _STORAGE_CLASSES, Verification

from deid import logs
from deid.intake.acceptor import IntakeRequestHandler, SharedContexts, object_parts
from deid.intake.guard import Gate, GuardedServer, Limits, wake_on_early_close
from deid.settings import AllowedCaller, ServeSettings, TlsFiles
from deid.spool import Spool, Spooled, SpoolError

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC210
NETWORK_TIMEOUT = 120  # seconds: an association idle this long, or a read stalled this long, ends

# accepted as they are: the engine copies pixel data byte for byte and the forwarder sends the same
# syntax.  pynetdicom picks the first syntax of this list that a context proposes: compressed ones
# come first, so a sender offering its object's own compressed syntax gets it (no conversion).
TRANSFER_SYNTAXES = [
    uids.JPEGBaseline8Bit,
    uids.JPEGExtended12Bit,
    uids.JPEGLossless,
    uids.JPEGLosslessSV1,
    uids.JPEGLSLossless,
    uids.JPEGLSNearLossless,
    uids.JPEG2000Lossless,
    uids.JPEG2000,
    uids.JPEG2000MCLossless,
    uids.JPEG2000MC,
    uids.HTJ2KLossless,
    uids.HTJ2KLosslessRPCL,
    uids.HTJ2K,
    uids.RLELossless,
    uids.DeflatedExplicitVRLittleEndian,
    uids.ExplicitVRLittleEndian,
    uids.ImplicitVRLittleEndian,
    uids.ExplicitVRBigEndian,
]


def caller_allowed(allow: Iterable[AllowedCaller], ae_title: str, host: str) -> bool:
    """True when ``ae_title`` (from ``host``) is on the allow list."""
    title = ae_title.strip()
    return any(c.ae_title == title and (c.host is None or c.host == host) for c in allow)


def server_ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """TLS for the listening socket; with a CA, a client must present a certificate it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert), str(tls.key))
    if tls.ca is not None:
        context.load_verify_locations(cafile=str(tls.ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _log(level: str, event: str, **fields: object) -> None:
    """Log from a handler; a logging failure must never change what the peer is answered."""
    try:
        getattr(logs.get_logger("deid.intake"), level)(event, **fields)
    except Exception:  # noqa: BLE001
        pass


def _handle_requested(event: Any, allow: tuple[AllowedCaller, ...], gate: Gate) -> None:
    """Reject an association whose calling AE title (and host) is not allowed (0x01, 0x01, 0x03),
    or, when ``max_associations`` are under way, with local limit exceeded (0x02, 0x03, 0x02).
    (Unknown titles are also refused by pynetdicom itself: ``require_calling_aet``.)"""
    assoc = event.assoc
    try:
        title = assoc.requestor.primitive.calling_ae_title
        host = str(assoc.requestor.address)
        allowed = caller_allowed(allow, title, host)
        room = allowed and gate.authorise(host, int(assoc.requestor.port))
    except Exception:  # pynetdicom accepts when a handler raises: an error in deciding is a reject
        title, allowed, room = "", False, False
    if not allowed:
        assoc.acse.send_reject(0x01, 0x01, 0x03)
        assoc.kill()  # as pynetdicom does after its own rejections: the reject PDU goes out
        _log("warning", "association rejected", aet=str(title).strip(), code="calling-aet-not-allowed")
    elif not room:
        assoc.acse.send_reject(0x02, 0x03, 0x02)
        assoc.kill()
        _log("warning", "association rejected: max_associations under way", aet=str(title).strip(),
             code="association-limit")


def _handle_store(event: Any, spool: Spool, counters: dict[str, int],
                  ring: Callable[[], None] | None = None) -> int:
    """A C-STORE that pynetdicom decoded: its object to the spool (:func:`store_object`)."""
    try:
        parts = object_parts(event)
    except Exception:  # noqa: BLE001
        return STATUS_CANNOT_UNDERSTAND
    return store_object(spool, counters, parts, ring)


def store_object(spool: Spool, counters: dict[str, int],
                 parts: Sequence[bytes | memoryview], ring: Callable[[], None] | None = None) -> int:
    """Write an object (``parts``: its Part 10 bytes, in order) to the spool and queue it; success
    only when it is durable (:func:`store_answer_first`, queued before the answer)."""
    status, then = store_answer_first(spool, counters, parts, ring)
    if then is not None:
        then()
    return status


def store_answer_first(spool: Spool, counters: dict[str, int],
                       parts: Sequence[bytes | memoryview], ring: Callable[[], None] | None = None,
                       ) -> tuple[int, Callable[[], None] | None]:
    """Write an object (``parts``: its Part 10 bytes, in order) to the spool: success only once it
    is durable, else out of resources; on success, what queues it is left to call after the
    answer (deid.intake.pdata.Store): the sender reads the answer and sends its next object
    meanwhile.  The queue's row needs no sync before the answer (the object's bytes are
    durable, and recovery queues a whole object no row names).  Once queued, ``ring`` wakes an
    idle worker (deid.doorbell)."""
    try:
        written = spool.write(*parts)
    except SpoolError as exc:
        counters["refused"] = counters.get("refused", 0) + 1
        _log("error", "object refused: spool unavailable", code="out-of-resources",
             error_type=str(exc))
        return STATUS_OUT_OF_RESOURCES, None
    except Exception:  # noqa: BLE001  (anything else: never success for an object not durable)
        _log("error", "object refused: spool error", code="out-of-resources")
        return STATUS_OUT_OF_RESOURCES, None
    finally:
        for part in parts:
            if isinstance(part, memoryview):
                part.release()  # (the request's data set can be let go)
    return STATUS_SUCCESS, partial(_queue, spool, written, ring)


def _queue(spool: Spool, written: Spooled, ring: Callable[[], None] | None) -> None:
    """Queue an object whose sender was answered success, and wake a worker for it.  Its row
    not committed (a full disk, a database error): it waits in memory, tried again with the next
    object and the node's tidying, and a restart queues it from the spool; said once per such
    object, so that an operator sees why objects wait."""
    error = spool.queue_answered(written)
    if error is not None:
        _log("warning", "received object waits for its queue row (the spool's database "
             "refused it; it is durable and will be queued)", code="spool-unavailable",
             error_type=error)
        return
    if ring is not None:
        ring()


def _handle_echo(_event: Any) -> int:
    return STATUS_SUCCESS


class Receiver:
    """The listening AE; :meth:`start` binds, :meth:`stop_accepting` closes the port and
    :meth:`wait_idle` waits for associations in progress to end."""

    def __init__(self, settings: ServeSettings, spool: Spool,
                 ring: Callable[[], None] | None = None) -> None:
        """``ring``: called once each received object is queued (deid.doorbell)."""
        self.settings = settings
        self.spool = spool
        self.ring = ring
        self.counters: dict[str, int] = {}
        self.limits = Limits(
            per_address=settings.max_unassociated_per_address,
            total=settings.max_unassociated,
            handshake_timeout=settings.handshake_timeout,
            max_associations=settings.max_associations,
            max_pdu=settings.max_pdu_size,
            network_timeout=NETWORK_TIMEOUT,
        )
        ae = AE(ae_title=settings.ae_title)
        # the gate counts associations (and, apart, connections not yet associated); pynetdicom
        # counts every connection's thread from its first byte, so its limit is only a backstop
        ae.maximum_associations = 2 * (settings.max_associations + settings.max_unassociated)
        ae.require_called_aet = False
        # second line of defence: pynetdicom itself refuses titles not allowed from any host
        ae.require_calling_aet = sorted({caller.ae_title for caller in settings.allow})
        ae.network_timeout = NETWORK_TIMEOUT
        ae.acse_timeout = settings.handshake_timeout  # also the ARTIM timer
        ae.dimse_timeout = 120
        ae.maximum_pdu_size = settings.max_pdu_size  # what we announce and enforce; never 0
        ae.add_supported_context(Verification)
        for sop_class in sorted(set(_STORAGE_CLASSES.values())):
            ae.add_supported_context(sop_class, TRANSFER_SYNTAXES)
        self.ae = ae
        self.server: Any = None
        self.gate: Gate | None = None

    def start(self) -> int:
        """Start listening (in background threads); returns the bound port."""
        known = tuple(sorted({c.host for c in self.settings.allow if c.host is not None}))
        self.gate = Gate(self.limits, known)
        handlers = [
            (evt.EVT_REQUESTED, _handle_requested, [self.settings.allow, self.gate]),
            (evt.EVT_C_STORE, _handle_store, [self.spool, self.counters, self.ring]),
            (evt.EVT_C_ECHO, _handle_echo),
            (evt.EVT_CONN_CLOSE, wake_on_early_close),
        ]
        context = server_ssl_context(self.settings.tls) if self.settings.tls else None
        server = self.ae.make_server(
            (self.settings.host, self.settings.port),
            evt_handlers=handlers,
            server_class=GuardedServer,
            gate=self.gate,
            tls=context,  # the handshake runs in each connection's thread, under the gate
            request_handler=IntakeRequestHandler,  # answers as soon as an object is durable
        )
        server.contexts = SharedContexts(server.contexts)  # (not copied per association)
        # C-STORE requests read and answered in each association's DUL thread (deid.intake.pdata)
        server.store_object = partial(store_answer_first, self.spool, self.counters,
                                      ring=self.ring)
        self.gate.start()
        threading.Thread(target=server.serve_forever, name="deid-receiver", daemon=True).start()
        self.server = server
        return int(server.server_address[1])

    def stop_accepting(self) -> None:
        """Close the listening port; associations in progress go on."""
        if self.server is not None:
            server, self.server = self.server, None
            server.shutdown()

    def active(self) -> int:
        """Associations established with senders (a bare TCP connection or one still negotiating
        is not counted: it has sent nothing that could be lost)."""
        return len([a for a in self.ae.active_associations if a.is_acceptor and a.is_established])

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no established association is left; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while self.active():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def abort_all(self) -> None:
        """Close the port, cut connections not associated yet, abort the associations."""
        self.stop_accepting()
        if self.gate is not None:
            self.gate.cut_unassociated()  # (pynetdicom cannot abort them: no association yet)
        for assoc in self.ae.active_associations:
            if assoc.is_established:
                assoc.abort()
