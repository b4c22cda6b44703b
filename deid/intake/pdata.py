"""C-STORE requests read straight off an acceptor association's P-DATA-TF PDUs, in its DUL thread.

pynetdicom 3.0 (pinned) turns each received PDU into objects several times over: the PDU is
copied into a new ``bytes``, sliced into its PDV items, each sliced again without its control
byte and written into the message's ``BytesIO`` (five copies of every data set); the command set
is decoded by pydicom into a data set and then into a primitive whose UIDs are validated; the
request goes to the association thread through a queue, and its answer comes back to the DUL
thread through another to be encoded.  A storage SCU that waits for each answer (``storescu``,
most modalities) pays all of it once per object, on the path the whole node waits for.

:func:`read_data_directly` makes an association's DUL thread, in the data transfer state (Sta6),
read each P-DATA-TF PDU itself, into one buffer, and follow its PDV items as views of it:

- a **C-STORE request** on an accepted storage context, its command set holding only what such a
  request holds (UIDs of digits and dots, a known priority), its SOP class the context's: the
  data set's fragments stay views of the PDUs they came in (never copied); after the last one,
  ``store(parts)`` gets the object as Part 10 parts (the file meta pynetdicom would write, then
  the fragments) and the status it answers goes back at once, the C-STORE response pynetdicom
  would send, written to the connection from this thread (the only one that writes to it);
  what ``store`` left to do after the answer is done then;
- **any other message** (a C-ECHO, a C-CANCEL, a request unlike that): its PDV items go to
  pynetdicom's DIMSE exactly as pynetdicom's own DT-2 action hands them over, and pynetdicom
  serves it as before;
- **every other PDU**, and every PDU outside Sta6, is decoded and queued by pynetdicom's code
  (:class:`deid.pdus.PduReader`, which reads the PDUs).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from typing import Any

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class

from deid.pdus import COMMAND, LAST, PduReader, command_elements

#: what gets an object's Part 10 parts: the status to answer, and what is left to do once the
#: answer is sent (None: nothing)
Store = Callable[[Sequence[bytes | memoryview]], tuple[int, Callable[[], None] | None]]

_PDV = struct.Struct(">BBIIBB")  # a whole P-DATA-TF header with one PDV item, as sent
_C_STORE_RQ = 0x0001
_NO_DATA_SET = 0x0101
#: the elements a C-STORE request's command set may hold (PS3.7 9.3.1.1)
#: data fragments shorter than this are copied together, not held as views (see DataReader._keep)
_SHORT_FRAGMENT = 2048
_STORE_ELEMENTS = frozenset({0x0000, 0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000, 0x1030,
                             0x1031})


class DataReader(PduReader):
    """One association's reading of PDUs in Sta6 (the module docstring; deid.pdus): ``pdvs``
    holds the PDV items of the message under way (each a view of the PDU it came in, control
    byte first); ``request`` its command set once that is whole and ours to serve."""

    def __init__(self, association: Any, store: Store) -> None:
        super().__init__(association)
        self.store = store
        self.pdvs: list[tuple[int, memoryview]] = []
        self.request: dict[int, bytes] | None = None
        self.storage_contexts: dict[int, tuple[bytes, bytes] | None] = {}  # (SOP class, syntax)

    def _item(self, context_id: int, value: memoryview) -> None:
        if self.handed:
            self._hand([(context_id, value)])
            return
        self._keep(context_id, value)
        control = value[0]
        if control & COMMAND:
            if self.request is not None:  # a command in the middle of a data set: pynetdicom's
                self._give_up()
            elif control & LAST:
                self.request = self._store_request(context_id)
                if self.request is None:
                    self._give_up()
        elif self.request is None:  # data before a whole command: pynetdicom's to judge
            self._give_up()
        elif control & LAST:
            self._serve()

    def _keep(self, context_id: int, value: memoryview) -> None:
        """Hold a PDV item of the message under way: a view, or a short data fragment copied
        onto the one before it (a view costs ~250 bytes: a peer sending a data set in one-byte
        fragments would make memory grow 40 times faster than the bytes it sends)."""
        pdvs = self.pdvs
        if len(value) < _SHORT_FRAGMENT and not value[0] & COMMAND:
            if pdvs and type(pdvs[-1][1]) is bytearray and pdvs[-1][0] == context_id:
                merged = pdvs[-1][1]
                merged[0] = value[0]  # (its control header: the last fragment's)
                merged += value[1:]
                return
            pdvs.append((context_id, bytearray(value)))  # type: ignore[arg-type]
            return
        pdvs.append((context_id, value))

    def _give_up(self) -> None:
        """The message under way is pynetdicom's: what came of it so far goes to it."""
        pdvs, self.pdvs, self.request = self.pdvs, [], None
        self._hand(pdvs)

    def _store_request(self, context_id: int) -> dict[int, bytes] | None:
        """The command set just completed, when it is a C-STORE request served here."""
        command = b"".join(bytes(value[1:]) for _, value in self.pdvs)
        elements = command_elements(command, _STORE_ELEMENTS)
        if elements is None or not {0x0002, 0x0100, 0x0110, 0x0700, 0x0800,
                                    0x1000} <= elements.keys():
            return None
        us = {tag: elements[tag] for tag in (0x0100, 0x0110, 0x0700, 0x0800)}
        if any(len(value) != 2 for value in us.values()):
            return None
        field, priority, data_set = (int.from_bytes(us[tag], "little") for tag in
                                     (0x0100, 0x0700, 0x0800))
        if field != _C_STORE_RQ or data_set == _NO_DATA_SET or priority not in (0, 1, 2):
            return None
        sop_class = plain_uid(_ui(elements[0x0002]))
        if plain_uid(_ui(elements[0x1000])) is None or sop_class is None:
            return None
        context = self._storage_context(context_id)
        if context is None or context[0] != sop_class:
            return None
        association = self.association
        if getattr(association, "_sent_release", False) or not association.is_established:
            return None
        return elements

    def _storage_context(self, context_id: int) -> tuple[bytes, bytes] | None:
        """(SOP class, transfer syntax) of an accepted context whose requests pynetdicom's storage
        service class would serve, as plain UIDs; None for any other."""
        if context_id not in self.storage_contexts:
            found = None
            context = self.association._accepted_cx.get(context_id)
            if context is not None:
                sop_class = str(context.abstract_syntax)
                syntax = plain_uid(str(context.transfer_syntax[0]))
                extended = self.association.acceptor.accepted_common_extended
                plain = plain_uid(sop_class)
                if (plain is not None and syntax is not None and sop_class not in extended
                        and uid_to_service_class(sop_class) is StorageServiceClass):
                    found = (plain, syntax)
            self.storage_contexts[context_id] = found
        return self.storage_contexts[context_id]

    def _serve(self) -> None:
        """Store the whole object and answer its status."""
        pdvs, request = self.pdvs, self.request
        self.pdvs, self.request = [], None
        assert request is not None
        command_context = next(cid for cid, value in reversed(pdvs) if value[0] & COMMAND)
        sop_class, syntax = self.storage_contexts[command_context]  # type: ignore[misc]
        sop_instance = plain_uid(_ui(request[0x1000]))
        assert sop_instance is not None
        fragments = [memoryview(value)[1:] for _, value in pdvs if not value[0] & COMMAND]
        try:
            status, then = self.store((file_meta_prefix(sop_class, sop_instance, syntax),
                                       *fragments))
        finally:
            for fragment in fragments:
                fragment.release()
        message_id = int.from_bytes(request[0x0110], "little")
        try:
            self._answer(command_context,
                         store_response_command(sop_class, sop_instance, message_id, status))
        finally:
            if then is not None:
                then()  # (while the peer reads the answer and sends its next object)

    def _answer(self, context_id: int, command: bytes) -> None:
        """Send a command set as P-DATA-TF PDUs no longer than the peer takes."""
        if not self.association.is_established:
            return  # aborted meanwhile: nothing to answer, as pynetdicom
        limit = int(self.association.requestor.maximum_length or 0)
        size = limit - 6 if limit > 6 else len(command)
        out = bytearray()
        for start in range(0, len(command), size):
            fragment = command[start : start + size]
            last = LAST if start + size >= len(command) else 0
            out += _PDV.pack(0x04, 0, len(fragment) + 6, len(fragment) + 2, context_id,
                             COMMAND | last)
            out += fragment
        self.dul.socket.send(out)


def _ui(value: bytes) -> str:
    """A UI value as pydicom reads it: trailing NULs and spaces dropped."""
    return value.rstrip(b"\x00 ").decode("ascii", "replace")


def read_data_directly(association: Any, store: Store) -> None:
    """Make ``association``'s DUL thread read P-DATA-TF PDUs itself (module docstring); to be
    called on an association made to wait for events (deid.pynetdicom_waits)."""
    DataReader(association, store).install()


# -- the bytes pynetdicom would encode --------------------------------------------------------

_PLAIN_UID = re.compile(r"[0-9.]{1,64}")
_UL = struct.Struct("<HHII")  # implicit VR little endian: group, element, length, value
_US = struct.Struct("<HHIH")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")  # explicit VR little endian: group, element, VR, length
_PREAMBLE = b"\x00" * 128 + b"DICM"


def plain_uid(value: Any) -> bytes | None:
    """``value`` as ASCII when it is a UID of digits and dots, 1 to 64 of them (anything else is
    left to pynetdicom and pydicom, as before)."""
    if not isinstance(value, str) or _PLAIN_UID.fullmatch(value) is None:
        return None
    return value.encode("ascii")


def store_response_command(sop_class: bytes, sop_instance: bytes, answered: int,
                           status: int) -> bytes:
    """The command set of a C-STORE response that carries a status only (PS3.7 9.3.1.2: group
    length, Affected SOP Class UID, Command Field 0x8001, Message ID Being Responded To, Command
    Data Set Type 0x0101, Status, Affected SOP Instance UID), byte for byte as pynetdicom
    encodes it."""
    body = b"".join((
        _uid(0x0002, sop_class),
        _US.pack(0, 0x0100, 2, 0x8001),
        _US.pack(0, 0x0120, 2, answered),
        _US.pack(0, 0x0800, 2, 0x0101),
        _US.pack(0, 0x0900, 2, status),
        _uid(0x1000, sop_instance),
    ))
    return _UL.pack(0, 0x0000, 4, len(body)) + body


def _uid(element: int, value: bytes) -> bytes:
    """A group 0000 UI element, padded to an even length with one NUL."""
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHI", 0, element, len(value)) + value


def file_meta_prefix(sop_class: bytes, sop_instance: bytes, syntax: bytes) -> bytes:
    """The preamble, prefix and file meta pynetdicom writes before a received data set (version,
    SOP class and instance from the request, the context's transfer syntax, pynetdicom's
    implementation UID and version name), byte for byte."""
    elements = b"".join((
        b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01",
        _meta_element(0x0002, b"UI", sop_class, b"\x00"),
        _meta_element(0x0003, b"UI", sop_instance, b"\x00"),
        _meta_element(0x0010, b"UI", syntax, b"\x00"),
        _meta_element(0x0012, b"UI", PYNETDICOM_IMPLEMENTATION_UID.encode("ascii"), b"\x00"),
        _meta_element(0x0013, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii"), b" "),
    ))
    group_length = _EXPLICIT_SHORT.pack(2, 0, b"UL", 4) + struct.pack("<I", len(elements))
    return _PREAMBLE + group_length + elements


def _meta_element(element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    return _EXPLICIT_SHORT.pack(2, element, vr, len(value)) + value
