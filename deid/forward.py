"""C-STORE of released Part 10 objects (files, or bytes in memory: ``send_bytes``) to downstream
DICOM nodes.  In the node, each destination's sender process (deid.sender) owns a Forwarder.

One association per destination is kept open and reused; it is opened again when it drops, when
the peer closes it (idle timeouts) or when an object needs a presentation context the open one
lacks. Files go out as they are: the bytes after the file meta are sent unchanged on a context
with the file's own transfer syntax; only an uncompressed object may be re-encoded to another
uncompressed syntax of the same byte order when the peer accepts no other. Compressed pixel data
is never decoded. Every DIMSE status maps to one of three outcomes (:func:`classify`).
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, build_context
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from deid import cstore
from deid.logs import get_logger
from deid.pynetdicom_waits import wait_for_events


class Delivery(StrEnum):
    """What became of one send: the peer stored it, may take it later, or will never take it."""

    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"


DONE, RETRY, FAILED = Delivery.DONE, Delivery.RETRY, Delivery.FAILED

#: Presentation contexts an association may carry (PS3.8: odd IDs 1..255).
_MAX_CONTEXTS = 128
#: Slowest transfer rate (bytes/s) a large object is given time for, on top of ``timeout``.
_SLOWEST_RATE = 1_000_000
#: Uncompressed little-endian syntaxes an uncompressed object may be re-encoded to, in order.
_LITTLE_ENDIAN_FALLBACKS = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
#: Statuses outside the A7xx range that say "try again later" (PS3.7 Annex C).
_TRANSIENT = frozenset({0x0110, 0x0210, 0x0213, 0xFE00})
#: Warning statuses that are not in the Bxxx range (the object was stored).
_WARNINGS = frozenset({0x0001, 0x0107, 0x0116})

_log = get_logger("deid.forward")


@dataclass(frozen=True)
class TlsSettings:
    """TLS towards a destination: ``ca`` signs its certificate (default: the system's trust
    store), ``cert``/``key`` are our client certificate and key if it asks for one, and
    ``server_name`` is the name its certificate must carry (default: the destination host)."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    server_name: str | None = None

    def context(self) -> ssl.SSLContext:
        """A client SSL context: peer certificate and name verified, TLS 1.2 or later."""
        cafile = str(self.ca) if self.ca is not None else None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None:
            context.load_cert_chain(str(self.cert), str(self.key) if self.key is not None else None)
        return context


@dataclass(frozen=True)
class Destination:
    """A downstream C-STORE SCP; ``called_by`` is the calling AE title we use towards it."""

    ae_title: str
    host: str
    port: int
    called_by: str = "DEID"
    tls: TlsSettings | None = None

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


class SendResult(NamedTuple):
    """What became of one send (:class:`Delivery`), the DIMSE status, and our words for it."""

    outcome: Delivery
    status: int | None
    detail: str


def classify(status: int | None) -> Delivery:
    """The outcome of a C-STORE response status; ``None`` (no response) means retry.

    Success and warnings (0xB000-0xBFFF, 0x0001, 0x0107, 0x0116) are done: the peer stored the
    object. Out of resources (0xA700-0xA7FF), processing failure (0x0110), resource limitation
    (0x0213), duplicate invocation (0x0210) and cancel (0xFE00) may pass: retry. Everything else
    (0xA900-0xA9FF dataset does not match SOP class, 0xC000-0xCFFF cannot understand, 0x0122 SOP
    class not supported, 0x0117, 0x0124, ...) will fail again: failed.
    """
    if status is None:
        return RETRY
    if status == 0x0000 or 0xB000 <= status <= 0xBFFF or status in _WARNINGS:
        return DONE
    if 0xA700 <= status <= 0xA7FF or status in _TRANSIENT:
        return RETRY
    return FAILED


def _uncompressed(syntax: UID) -> bool:
    """A transfer syntax pydicom knows, without compression (native or deflated)."""
    return bool(syntax.is_transfer_syntax) and not syntax.is_compressed


def _name(uid: str, what: str) -> str:
    """A standard UID's registered name, or a fixed phrase for one outside the dictionary."""
    named = UID(uid)
    return named.name if named.is_valid and named.name != named else f"an unlisted {what}"


@dataclass(frozen=True)
class _Object:
    """What the file meta says about one file (or object in memory: ``data``)."""

    path: Path | None
    sop_class: UID
    transfer_syntax: UID
    size: int
    data: bytes | None = None

    def candidates(self) -> tuple[UID, ...]:
        """Transfer syntaxes it may travel in: its own first, then lossless re-encodings."""
        ts = self.transfer_syntax
        if not _uncompressed(ts) or not ts.is_little_endian:
            return (ts,)
        return (ts, *(other for other in _LITTLE_ENDIAN_FALLBACKS if other != ts))


@dataclass
class _Link:
    """The association to one destination and the (SOP class, syntax) pairs it was asked for."""

    destination: Destination
    ae: AE
    lock: threading.Lock = field(default_factory=threading.Lock)
    association: Association | None = None
    proposed: dict[tuple[str, str], None] = field(default_factory=dict)
    reused: bool = False  # the send under way went out on an association opened before it
    message_id: int = 0

    def next_message_id(self) -> int:
        self.message_id = self.message_id % 0xFFFF + 1
        return self.message_id

    def is_open(self) -> bool:
        return self.association is not None and bool(self.association.is_established)

    def accepted(self) -> set[tuple[str, str]]:
        if not self.is_open():
            return set()
        assert self.association is not None
        return {
            (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
            for cx in self.association.accepted_contexts
        }


class _LinkDown(Exception):
    """No association could be opened (the detail is fixed text)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Forwarder:
    """Keeps one association per destination open and reuses it; reconnects when it drops.

    ``timeout`` bounds connecting, association negotiation and each response (a large object gets
    one more second per MB, as the wait for its response includes sending it), and is how long
    an idle association stays open before it is released (``idle`` to choose another). Sends to
    one destination are serialised. Make one per process: associations do not survive a fork.
    """

    def __init__(
        self,
        destinations: Sequence[Destination],
        *,
        timeout: float = 30,
        idle: float | None = None,
    ) -> None:
        self._timeout = timeout
        self._idle = idle if idle is not None else timeout
        self._links: dict[Destination, _Link] = {}
        self._links_lock = threading.Lock()
        for destination in destinations:
            self._link(destination)

    def send(self, destination: Destination, path: Path) -> SendResult:
        """C-STORE the Part 10 file at ``path`` to ``destination``, as it is."""
        try:
            item = _read_meta(Path(path))
        except _Unsendable as error:
            return SendResult(FAILED, None, error.detail)
        return self._send_item(destination, item)

    def send_bytes(self, destination: Destination, data: bytes) -> SendResult:
        """C-STORE a Part 10 object held in memory (released bytes), as it is: nothing is
        written to disk or read back from it."""
        try:
            meta = cstore.file_meta(data)
        except (ValueError, struct.error, UnicodeDecodeError):
            return SendResult(FAILED, None, "object is not a readable DICOM Part 10 object")
        item = _Object(None, UID(meta.sop_class), UID(meta.transfer_syntax), len(data), data)
        return self._send_item(destination, item)

    def _send_item(self, destination: Destination, item: _Object) -> SendResult:
        link = self._link(destination)
        with link.lock:
            result = self._send(link, item)
            if result.status is None and result.outcome == RETRY and link.reused:
                # The open association had gone stale (the peer closed it as we sent): once more.
                self._drop(link, abort=True)
                result = self._send(link, item)
            if result.status is None and result.outcome == RETRY:
                self._drop(link, abort=True)
            return result

    def close(self) -> None:
        """Release every open association."""
        with self._links_lock:
            links = list(self._links.values())
        for link in links:
            with link.lock:
                self._drop(link, abort=False)

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- one send -------------------------------------------------------------------------------

    def _link(self, destination: Destination) -> _Link:
        with self._links_lock:
            link = self._links.get(destination)
            if link is None:
                ae = AE(ae_title=destination.called_by)
                ae.connection_timeout = self._timeout
                ae.acse_timeout = self._timeout
                ae.dimse_timeout = self._timeout
                ae.network_timeout = self._idle  # idle this long: released (see _open)
                ae.maximum_pdu_size = 0
                link = self._links[destination] = _Link(destination, ae)
            return link

    def _send(self, link: _Link, item: _Object) -> SendResult:
        try:
            syntax = self._context_for(link, item)
        except _LinkDown as down:
            return SendResult(RETRY, None, down.detail)
        if syntax is None:
            return SendResult(FAILED, None, _refusal(link, item))
        assert link.association is not None
        link.association.dimse_timeout = self._timeout + item.size / _SLOWEST_RATE
        try:
            if syntax == item.transfer_syntax:
                response = _send_raw(link.association, item, link.next_message_id())
            else:
                # Uncompressed, same byte order: pynetdicom re-encodes the decoded elements;
                # pixel data stays the bytes it is.
                source = BytesIO(item.data) if item.data is not None else item.path
                assert source is not None
                response = link.association.send_c_store(
                    dcmread(source), msg_id=link.next_message_id()
                )
        except (OSError, InvalidDicomError, AttributeError, ValueError, struct.error) as error:
            if isinstance(error, OSError) and not link.is_open():
                return SendResult(RETRY, None, "connection lost while sending")
            return SendResult(FAILED, None, f"file cannot be sent ({type(error).__name__})")
        except RuntimeError:
            return SendResult(RETRY, None, "association closed before the object was sent")
        status = getattr(response, "Status", None)
        if status is None:
            return SendResult(RETRY, None, "no response from destination (timeout or connection lost)")
        status = int(status)
        outcome = classify(status)
        return SendResult(outcome, status, _status_detail(status, outcome))

    def _context_for(self, link: _Link, item: _Object) -> UID | None:
        """The transfer syntax to send ``item`` in on ``link``'s association (opened or re-opened
        as needed); ``None`` when the peer refused every candidate."""
        wanted = [(str(item.sop_class), str(ts)) for ts in item.candidates()]
        link.reused = False
        if link.is_open():
            chosen = _choose(link.accepted(), wanted)
            if chosen is not None:
                link.reused = True
                return chosen
            if all(pair in link.proposed for pair in wanted):
                return None
        for pair in wanted:
            link.proposed.pop(pair, None)
            link.proposed[pair] = None
        while len(link.proposed) > _MAX_CONTEXTS - 1:  # one context is Verification
            link.proposed.pop(next(iter(link.proposed)))
        self._drop(link, abort=False)
        self._open(link)
        return _choose(link.accepted(), wanted)

    def _open(self, link: _Link) -> None:
        destination = link.destination
        contexts = [build_context(Verification)]
        contexts += [build_context(sop, ts) for sop, ts in link.proposed]
        tls_args = None
        if destination.tls is not None:
            try:
                tls_context = destination.tls.context()
            except (OSError, ssl.SSLError) as error:
                raise _LinkDown(f"TLS settings cannot be loaded ({type(error).__name__})") from None
            tls_args = (tls_context, destination.tls.server_name or destination.host)
        started = time.monotonic()
        try:
            association = link.ae.associate(
                destination.host,
                destination.port,
                contexts=contexts,
                ae_title=destination.ae_title,
                tls_args=tls_args,
            )
        except (OSError, ValueError, RuntimeError) as error:
            raise _LinkDown(f"cannot connect to destination ({type(error).__name__})") from None
        association.network_timeout_response = "A-RELEASE"
        if association.is_established:
            _no_delay(association)
            cstore.keep_responses(association)
            if wait_for_events(association):  # answers read as they come, no 1 ms naps
                cstore.read_responses(association)  # status-only answers read by deid
            link.association = association
            _log.info("forward.associated", aet=destination.ae_title, port=destination.port,
                      count=len(association.accepted_contexts))
            return
        if association.is_rejected:
            detail = "association rejected by destination"
        elif association.rejected_contexts and not association.accepted_contexts:
            detail = "destination accepted no presentation context"
        elif time.monotonic() - started >= self._timeout:
            detail = "no association response from destination within the timeout"
        else:
            detail = "connection to destination failed or was aborted"
        _log.warning("forward.association_failed", aet=destination.ae_title,
                     port=destination.port, outcome=detail)
        raise _LinkDown(detail)

    def _drop(self, link: _Link, *, abort: bool) -> None:
        association, link.association = link.association, None
        if association is None:
            return
        if association.is_established:
            if abort:
                association.abort()
            else:
                association.release()
        _log.debug("forward.closed", aet=link.destination.ae_title, port=link.destination.port)


def _no_delay(association: Association) -> None:
    """Send each PDU at once (TCP_NODELAY): pynetdicom leaves Nagle's algorithm on, and a C-STORE
    then waits for the peer's delayed ACK (~40 ms) before its last PDU goes out."""
    sock = getattr(getattr(association.dul, "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (or already closed): nothing to gain


class _Unsendable(Exception):
    """A file that cannot be sent at all (the detail is fixed text)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _read_meta(path: Path) -> _Object:
    """SOP class and transfer syntax from the file meta, without reading the data set."""
    try:
        size = path.stat().st_size
        meta = read_file_meta_info(path)
    except FileNotFoundError:
        raise _Unsendable("file to send does not exist") from None
    except (OSError, InvalidDicomError, ValueError, EOFError):
        raise _Unsendable("file is not a readable DICOM Part 10 file") from None
    missing = [
        keyword
        for keyword in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")
        if not str(meta.get(keyword, "")).strip()
    ]
    if missing:
        raise _Unsendable("file meta lacks " + ", ".join(missing))
    return _Object(path, UID(meta.MediaStorageSOPClassUID), UID(meta.TransferSyntaxUID), size)


def _choose(accepted: set[tuple[str, str]], wanted: list[tuple[str, str]]) -> UID | None:
    for pair in wanted:
        if pair in accepted:
            return UID(pair[1])
    return None


def _send_raw(association: Association, item: _Object, message_id: int) -> object:
    """Send the bytes after the file meta unchanged, framed as PDUs in one write
    (:mod:`deid.cstore`); the response primitive (its ``Status``) or None."""
    assert item.data is not None or item.path is not None
    data = item.data if item.data is not None else item.path.read_bytes()  # type: ignore[union-attr]
    meta = cstore.file_meta(data)
    return cstore.send_c_store(
        association, memoryview(data)[meta.offset:], sop_class=meta.sop_class,
        sop_instance=meta.sop_instance, transfer_syntax=meta.transfer_syntax,
        message_id=message_id,
    )


def _refusal(link: _Link, item: _Object) -> str:
    """Why the peer took no context for ``item`` (fixed text naming only standard UIDs)."""
    sop = _name(item.sop_class, "SOP class")
    ts = _name(item.transfer_syntax, "transfer syntax")
    association = link.association
    rejected = association.rejected_contexts if association is not None else []
    offered = [cx for cx in rejected if str(cx.abstract_syntax) == str(item.sop_class)]
    if offered and all(cx.result == 0x03 for cx in offered):
        return f"destination does not support {sop} (presentation context rejected)"
    if not _uncompressed(item.transfer_syntax):
        return (f"destination does not accept {sop} in {ts}; compressed data is never decoded, "
                "so it cannot be sent there")
    return f"destination accepts {sop} in none of the uncompressed syntaxes offered"


def _status_detail(status: int, outcome: Delivery) -> str:
    code = f"0x{status:04X}"
    if outcome == DONE:
        return "stored" if status == 0 else f"stored with warning {code}"
    if 0xA700 <= status <= 0xA7FF:
        return f"destination out of resources ({code})"
    if outcome == RETRY:
        return f"destination failed for now ({code})"
    if 0xA900 <= status <= 0xA9FF:
        return f"destination says the data set does not match its SOP class ({code})"
    if 0xC000 <= status <= 0xCFFF:
        return f"destination cannot understand the object ({code})"
    if status == 0x0122:
        return f"destination does not support the SOP class ({code})"
    return f"destination refused the object ({code})"


__all__ = [
    "DONE",
    "FAILED",
    "RETRY",
    "Delivery",
    "Destination",
    "Forwarder",
    "SendResult",
    "TlsSettings",
    "classify",
]
