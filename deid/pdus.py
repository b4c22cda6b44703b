"""Reading an association's PDUs in pynetdicom's data transfer state (Sta6) without pynetdicom's
decoding, for the messages deid serves itself.

pynetdicom 3.0 (pinned) copies a received PDU several times over and decodes every message it
carries through its state machine, pydicom and a queue between two threads.  A
:class:`PduReader`, installed as the DUL's ``_read_pdu_data``, reads each PDU in Sta6 into one
buffer and hands its PDV items, as views of that buffer, to :meth:`PduReader._item` (a
subclass's: deid.intake.pdata for C-STORE requests, deid.cstore for C-STORE responses).  What a
subclass does not serve goes to pynetdicom exactly as pynetdicom's own reading would: a PDU other
than P-DATA-TF (or one whose items do not fill it) is decoded and queued by pynetdicom's code,
PDV items go to its DIMSE as its DT-2 action hands them over (:meth:`PduReader._hand`), and in
any other state pynetdicom reads the PDU itself.
"""

from __future__ import annotations

import struct
from typing import Any

from pynetdicom.pdu_primitives import P_DATA

_HEADER = struct.Struct(">BBI")  # PDU type, reserved, length
_ITEM = struct.Struct(">IB")  # PDV item length, presentation context ID
_KNOWN_PDU_TYPES = frozenset(range(1, 8))
_ELEMENT = struct.Struct("<HHI")  # a command set's element: group, element, length (implicit VR)
#: a PDV's message control header: a command's fragment (else a data set's), the last one
COMMAND, LAST = 0x01, 0x02


class PduReader:
    """One association's reading of PDUs (the module docstring).  ``handed``: the message under
    way is pynetdicom's (its next PDV items go to it until it is whole)."""

    def __init__(self, association: Any) -> None:
        self.association = association
        self.dul = association.dul
        self.dimse = association.dimse
        self.read_pdu = self.dul._read_pdu_data  # pynetdicom's, for every other state
        self.handed = False

    def install(self) -> None:
        self.dul._read_pdu_data = self

    def __call__(self) -> None:
        """Read a PDU from the connection and act on it (pynetdicom's ``_read_pdu_data``); while
        each PDU is ours, read on as the next arrives (:meth:`_next_arrived`)."""
        while self._read() and self._next_arrived():
            pass

    def _next_arrived(self) -> bool:
        """After a PDU read here: whether the next has arrived, waiting for it as the DUL's own
        loop would (the connection's ``ready``: deid.pynetdicom_waits), but without the loop's
        pause between two PDUs (its ``_run_loop_delay``, paid because the PDU queued no event: on
        this machine ~0.18 ms, some six times per CT slice).  False, back to the loop, as soon as
        it has something to do: the thread is to stop, an event or a primitive is queued (the
        wait ends when one is: it pokes the connection), or the state is no longer Sta6."""
        dul = self.dul
        if (dul._kill_thread or not dul.event_queue.empty() or dul.to_provider_queue.qsize()
                or dul.state_machine.current_state != "Sta6"):
            return False
        if not dul.socket.ready:
            return False
        dul._idle_timer.restart()  # (as the loop does for each PDU read)
        return True

    def _read(self) -> bool:
        """Read one PDU and act on it; True when it was read here, not by pynetdicom (so that
        no event was queued)."""
        dul = self.dul
        if dul.state_machine.current_state != "Sta6" or not dul.event_queue.empty():
            self.read_pdu()
            return False
        sock = dul.socket
        try:
            header = sock.recv(6)
        except (OSError, TimeoutError):
            dul.event_queue.put("Evt17")  # the transport connection closed, as pynetdicom
            return False
        if len(header) < 6:
            dul.event_queue.put("Evt17")
            return False
        pdu_type, _, length = _HEADER.unpack(header)
        if pdu_type not in _KNOWN_PDU_TYPES:
            dul.event_queue.put("Evt19")  # unrecognised PDU, as pynetdicom (its body unread)
            return False
        try:
            body = sock.recv(length)
        except (OSError, TimeoutError):
            dul.event_queue.put("Evt17")
            return False
        if len(body) != length:
            dul.event_queue.put("Evt17")
            return False
        if pdu_type != 0x04 or not self._items(body):
            self._to_pynetdicom(header + body)
            return False
        return dul.event_queue.empty()  # (a PDV item handed to pynetdicom may have queued one)

    # -- pynetdicom's way ---------------------------------------------------------------------
    def _to_pynetdicom(self, pdu: bytes | bytearray) -> None:
        """Decode and queue ``pdu`` as pynetdicom's ``_read_pdu_data`` does."""
        dul = self.dul
        try:
            decoded, event = dul._decode_pdu(pdu)
        except Exception:  # noqa: BLE001  (pynetdicom: an undecodable PDU is Evt19)
            dul.event_queue.put("Evt19")
            return
        dul.event_queue.put(event)
        dul._recv_pdu.put(decoded)

    def _hand(self, pdvs: list[tuple[int, memoryview]]) -> None:
        """Give ``pdvs`` to pynetdicom's DIMSE, each as its DT-2 gives a P-DATA-TF's items."""
        for context_id, value in pdvs:
            primitive = P_DATA()  # (as P_DATA_TF.to_primitive makes it)
            primitive.presentation_data_value_list = []
            primitive.presentation_data_value_list.append((context_id, bytes(value)))
            self.dimse.receive_primitive(primitive)
            self.handed = self.dimse.message is not None  # pynetdicom's message is not whole

    def _items(self, body: bytearray) -> bool:
        """Take a P-DATA-TF PDU's PDV items; False (nothing taken) when they do not fill its body
        exactly, which pynetdicom then decodes (and refuses) as before."""
        view = memoryview(body)
        items: list[tuple[int, memoryview]] = []
        at = 0
        while at < len(view):
            if at + _ITEM.size > len(view):
                return False
            length, context_id = _ITEM.unpack_from(view, at)
            if length < 2 or at + 4 + length > len(view):
                return False
            items.append((context_id, view[at + 5 : at + 4 + length]))
            at += 4 + length
        if not items:
            return False
        for context_id, value in items:
            self._item(context_id, value)
        return True

    def _item(self, context_id: int, value: memoryview) -> None:
        """One PDV item (its control header first), as it comes: the subclass's to serve."""
        self._hand([(context_id, value)])


def command_elements(command: bytes, allowed: frozenset[int]) -> dict[int, bytes] | None:
    """A command set's elements (group 0000, implicit VR little endian) by element number, their
    values as bytes; None when it holds an element not in ``allowed``, another group, or bytes
    that do not end with an element (such a message is pynetdicom's to decode)."""
    elements: dict[int, bytes] = {}
    at = 0
    while at + _ELEMENT.size <= len(command):
        group, element, length = _ELEMENT.unpack_from(command, at)
        start = at + _ELEMENT.size
        if group != 0 or element not in allowed or start + length > len(command):
            return None
        elements[element] = command[start : start + length]
        at = start + length
    return elements if at == len(command) else None
