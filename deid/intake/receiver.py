"""The C-STORE receiver: a pynetdicom AE that only puts received objects on the spool.

Verification and every Storage SOP class, with the uncompressed and common compressed transfer
syntaxes accepted as proposed (pixel data is never decoded here).  A calling AE title (and,
when configured, host) not on the allow list is rejected at association.  A C-STORE is answered
success (0x0000) only once the object is durable in the spool; when the spool cannot take it the
answer is 0xA700 (out of resources), never success.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Any

from pydicom import uid as uids
from pynetdicom import AE, evt
from pynetdicom.sop_class import _STORAGE_CLASSES, Verification

from deid import logs
from deid.settings import AllowedCaller, ServeSettings, TlsFiles
from deid.spool import Spool, SpoolError

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC210

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


def _handle_requested(event: Any, allow: tuple[AllowedCaller, ...]) -> None:
    """Reject an association whose calling AE title (and host) is not allowed (0x01, 0x01, 0x03).
    (Unknown titles are also refused by pynetdicom itself: ``require_calling_aet``.)"""
    assoc = event.assoc
    try:
        title = assoc.requestor.primitive.calling_ae_title
        allowed = caller_allowed(allow, title, str(assoc.requestor.address))
    except Exception:  # pynetdicom accepts when a handler raises: an error in deciding is a reject
        title, allowed = "", False
    if not allowed:
        assoc.acse.send_reject(0x01, 0x01, 0x03)
        assoc.kill()  # as pynetdicom does after its own rejections: the reject PDU goes out
        _log("warning", "association rejected", aet=str(title).strip(), code="calling-aet-not-allowed")


def _handle_store(event: Any, spool: Spool, counters: dict[str, int]) -> int:
    """Write the received bytes to the spool; success only when they are durable and queued."""
    try:
        data = event.encoded_dataset(include_meta=True)
    except Exception:  # noqa: BLE001
        return STATUS_CANNOT_UNDERSTAND
    try:
        spool.put(data)
    except SpoolError as exc:
        counters["refused"] = counters.get("refused", 0) + 1
        _log("error", "object refused: spool unavailable", code="out-of-resources",
             error_type=str(exc))
        return STATUS_OUT_OF_RESOURCES
    except Exception:  # noqa: BLE001  (anything else: never success for an object not durable)
        _log("error", "object refused: spool error", code="out-of-resources")
        return STATUS_OUT_OF_RESOURCES
    return STATUS_SUCCESS


def _handle_echo(_event: Any) -> int:
    return STATUS_SUCCESS


class Receiver:
    """The listening AE; :meth:`start` binds, :meth:`stop_accepting` closes the port and
    :meth:`wait_idle` waits for associations in progress to end."""

    def __init__(self, settings: ServeSettings, spool: Spool) -> None:
        self.settings = settings
        self.spool = spool
        self.counters: dict[str, int] = {}
        ae = AE(ae_title=settings.ae_title)
        ae.maximum_associations = settings.max_associations
        ae.require_called_aet = False
        # second line of defence: pynetdicom itself refuses titles not allowed from any host
        ae.require_calling_aet = sorted({caller.ae_title for caller in settings.allow})
        ae.network_timeout = 120
        ae.acse_timeout = 30
        ae.dimse_timeout = 120
        ae.maximum_pdu_size = 0  # no limit: larger PDUs, fewer round trips
        ae.add_supported_context(Verification)
        for sop_class in sorted(set(_STORAGE_CLASSES.values())):
            ae.add_supported_context(sop_class, TRANSFER_SYNTAXES)
        self.ae = ae
        self.server: Any = None

    def start(self) -> int:
        """Start listening (in background threads); returns the bound port."""
        handlers = [
            (evt.EVT_REQUESTED, _handle_requested, [self.settings.allow]),
            (evt.EVT_C_STORE, _handle_store, [self.spool, self.counters]),
            (evt.EVT_C_ECHO, _handle_echo),
        ]
        context = server_ssl_context(self.settings.tls) if self.settings.tls else None
        self.server = self.ae.start_server(
            (self.settings.host, self.settings.port),
            block=False,
            ssl_context=context,
            evt_handlers=handlers,
        )
        return int(self.server.server_address[1])

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
        self.ae.shutdown()
