"""C-STORE requests read straight off the P-DATA-TF PDUs (deid.intake.pdata): what the DUL thread
stores is the Part 10 object pynetdicom would have handed the handler, what it answers is the
response pynetdicom would have sent, and whatever is not a plain C-STORE request still reaches
pynetdicom as pynetdicom's own reading hands it over."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import Verification
from pynetdicom_offline import CT, offline_association, presentation_context, store_event
from servenode import spooled as spooled_originals
from servenode import start_receiver, storescu

from deid.intake import pdata
from deid.intake.acceptor import quicken
from deid.synthetic import make_patient, write_sample_study

EXPLICIT = "1.2.840.10008.1.2.1"
INSTANCE = "1.2.826.0.1.3680043.8.498.1"  # odd length: padded


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, element, len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode()
    return raw + b"\x00" * (len(raw) % 2)


def _store_command(message_id: int = 7, *extra: bytes, sop_class: str = CT) -> bytes:
    body = b"".join((
        _element(0x0002, _uid(sop_class)),
        _element(0x0100, struct.pack("<H", 0x0001)),
        _element(0x0110, struct.pack("<H", message_id)),
        _element(0x0700, struct.pack("<H", 0x0002)),
        _element(0x0800, struct.pack("<H", 0x0000)),
        _element(0x1000, _uid(INSTANCE)),
        *extra,
    ))
    return _element(0x0000, struct.pack("<I", len(body))) + body


def _pdu(*items: tuple[int, int, bytes]) -> bytes:
    """A P-DATA-TF PDU of (context ID, control header, fragment) items."""
    body = b"".join(struct.pack(">IBB", len(value) + 2, cid, control) + value
                    for cid, control, value in items)
    return struct.pack(">BBI", 0x04, 0, len(body)) + body


class _Peer:
    """An established acceptor association on one end of a socket pair, its threads never
    started (its DUL's reading is called by the test); the other end is the peer."""

    def __init__(self) -> None:
        association, self.socket = offline_association()
        self.stored: list[bytes] = []

        def store(parts: list[bytes | memoryview]) -> tuple[int, None]:
            self.stored.append(b"".join(bytes(part) for part in parts))
            return 0x0000, None

        quicken(association, store)
        for cid, sop_class in ((1, CT), (3, str(Verification))):
            association._accepted_cx[cid] = presentation_context(cid, sop_class, EXPLICIT)
        association.requestor.maximum_length = 16382
        association.is_established = True
        association.dul.state_machine.current_state = "Sta6"
        association.dul.event_queue.get_nowait()  # Evt5, the connection: as if acted on
        self.association = association

    def send(self, data: bytes) -> None:
        """The peer sends ``data``; the DUL reads one PDU of it."""
        self.socket.sendall(data)
        self.association.dul._read_pdu_data()

    def received(self) -> bytes:
        self.socket.settimeout(1)
        return self.socket.recv(65536)

    def close(self) -> None:
        self.association.dul.socket.close()
        self.socket.close()


@pytest.fixture
def peer():
    peer = _Peer()
    yield peer
    peer.close()


def _pynetdicoms_object(data_set: bytes) -> bytes:
    """The Part 10 bytes pynetdicom gives a handler for that request (event.encoded_dataset)."""
    return store_event(INSTANCE, EXPLICIT, data_set).encoded_dataset(include_meta=True)


def test_a_store_request_in_fragments_is_stored_whole_and_answered(peer: _Peer) -> None:
    data_set = bytes(range(256)) * 300
    command = _store_command()
    # the command in two fragments, the data set in three over two PDUs
    peer.send(_pdu((1, 0x01, command[:20]), (1, 0x03, command[20:]), (1, 0x00, data_set[:1000])))
    peer.send(_pdu((1, 0x00, data_set[1000:50000]), (1, 0x02, data_set[50000:])))
    assert peer.stored == [_pynetdicoms_object(data_set)]
    answer = peer.received()
    response = pdata.store_response_command(CT.encode(), INSTANCE.encode(), 7, 0x0000)
    assert answer == _pdu((1, 0x03, response))
    assert peer.association.dimse.msg_queue.empty()  # nothing went pynetdicom's way


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize("command", [
    _store_command(7, _element(0x0600, b"XX")),  # an element a C-STORE request does not hold
    _store_command(7, sop_class="1.2.840.10008.5.1.4.1.1.4"),  # not the context's SOP class
    _store_command(7, _element(0x1030, b"MOVER ")).replace(b"498.1\x00", b"498.x1"),  # odd UID
])
def test_a_request_unlike_a_plain_store_goes_to_pynetdicom(peer: _Peer, command: bytes) -> None:
    data_set = b"\x08\x00\x16\x00" + b"UI" + struct.pack("<H", 2) + b"1\x00"
    peer.send(_pdu((1, 0x03, command), (1, 0x02, data_set)))
    assert peer.stored == []
    context_id, message = peer.association.dimse.msg_queue.get(timeout=1)
    assert context_id == 1 and isinstance(message, C_STORE)
    assert message.DataSet.getvalue() == data_set


def test_an_echo_between_stores_goes_to_pynetdicom(peer: _Peer) -> None:
    echo = b"".join((
        _element(0x0002, _uid(str(Verification))),
        _element(0x0100, struct.pack("<H", 0x0030)),
        _element(0x0110, struct.pack("<H", 2)),
        _element(0x0800, struct.pack("<H", 0x0101)),
    ))
    echo = _element(0x0000, struct.pack("<I", len(echo))) + echo
    peer.send(_pdu((3, 0x03, echo)))
    _, message = peer.association.dimse.msg_queue.get(timeout=1)
    assert message.__class__.__name__ == "C_ECHO" and message.MessageID == 2
    peer.send(_pdu((1, 0x03, _store_command(8)), (1, 0x02, b"\x00" * 64)))
    assert len(peer.stored) == 1


def test_other_pdus_and_other_states_are_pynetdicoms(peer: _Peer) -> None:
    dul = peer.association.dul
    peer.send(b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # A-RELEASE-RQ
    assert dul.event_queue.get_nowait() == "Evt12"
    assert type(dul._recv_pdu.get_nowait()).__name__ == "A_RELEASE_RQ"
    dul.state_machine.current_state = "Sta7"  # awaiting a release answer: pynetdicom reads
    peer.send(_pdu((1, 0x03, _store_command()), (1, 0x02, b"\x00" * 64)))
    assert dul.event_queue.get_nowait() == "Evt10" and peer.stored == []


def test_storescu_in_small_pdus_spools_what_pynetdicoms_reading_spools(tmp_path: Path) -> None:
    """Through real associations in 4 KiB PDUs (each object in ~40 fragments): the objects read
    here are spooled byte for byte as when pynetdicom reads them."""
    files = write_sample_study(tmp_path / "in", make_patient(5), slices=3, size=64)
    spooled = {}
    for way in ("direct", "pynetdicom"):
        receiver, _spool = start_receiver(tmp_path / way)
        if way == "pynetdicom":
            receiver.server.store_object = None  # the associations read as pynetdicom reads
        try:
            result = storescu(receiver.settings.port, files, "-v", "--max-send-pdu", "4096")
            assert result.stderr.count("Received Store Response (Success)") == len(files)
        finally:
            receiver.abort_all()
        spooled[way] = sorted(spooled_originals(tmp_path / way / "data"))
    assert len(spooled["direct"]) == len(files)
    assert spooled["direct"] == spooled["pynetdicom"]


def test_a_data_set_in_one_byte_fragments_is_held_compactly(peer: _Peer) -> None:
    """A peer sending a data set a byte per PDV item: the fragments are copied together as they
    come (a view each would hold ~250 bytes of memory per byte sent), and the object stored is
    the same."""
    data_set = bytes(range(256)) * 40
    peer.send(_pdu((1, 0x03, _store_command())))
    for start in range(0, len(data_set) - 1, 1000):
        peer.send(_pdu(*((1, 0x00, data_set[at:at + 1])
                         for at in range(start, min(start + 1000, len(data_set) - 1)))))
        assert len(peer.association.dul._read_pdu_data.pdvs) <= 2  # the command, the data so far
    peer.send(_pdu((1, 0x00, b"x" * 3000), (1, 0x02, data_set[-1:])))
    assert peer.stored == [_pynetdicoms_object(data_set[:-1] + b"x" * 3000 + data_set[-1:])]


def test_pdus_that_have_arrived_are_read_on_without_going_back_to_the_loop(peer: _Peer) -> None:
    """The DUL's loop pauses (``_run_loop_delay``) after every PDU that queued no event, which
    each PDU read here is: the reading goes on while the next has arrived, so that an object in
    several PDUs pays no pause between them."""
    data_set = bytes(range(256)) * 64
    peer.socket.sendall(_pdu((1, 0x03, _store_command()), (1, 0x00, data_set[:4000]))
                        + _pdu((1, 0x00, data_set[4000:9000]))
                        + _pdu((1, 0x02, data_set[9000:])))
    peer.association.dul._read_pdu_data()  # once, as the loop calls it for the first PDU
    assert peer.stored == [_pynetdicoms_object(data_set)]
    response = pdata.store_response_command(CT.encode(), INSTANCE.encode(), 7, 0x0000)
    assert peer.received() == _pdu((1, 0x03, response))


@pytest.mark.parametrize("busy", ["primitive to send", "thread to stop"])
def test_the_reading_goes_back_to_the_loop_once_it_has_something_else_to_do(
    peer: _Peer, busy: str
) -> None:
    """A primitive queued to send (a release, an abort, pynetdicom's own message) or the thread
    told to stop: the loop gets them after the PDU being read, not after every PDU that has
    arrived."""
    dul = peer.association.dul
    data_set = bytes(range(256)) * 8
    peer.socket.sendall(_pdu((1, 0x03, _store_command()))
                        + _pdu((1, 0x02, data_set)))
    if busy == "primitive to send":
        dul.to_provider_queue.put(object())  # (pokes the DUL's wait, as any primitive queued)
    else:
        dul.kill_dul()
    reader = dul._read_pdu_data
    reader._read()  # the first PDU, as the loop would call it
    assert not reader._next_arrived() and peer.stored == []
    while not dul.to_provider_queue.empty():
        dul.to_provider_queue.get_nowait()
    dul._kill_thread = False
    peer.association.dul._read_pdu_data()  # the loop, its work done, reads the next PDU
    assert peer.stored == [_pynetdicoms_object(data_set)]


def test_what_the_store_leaves_for_after_the_answer_runs_once_the_answer_is_sent() -> None:
    """The receiver's store answers success once the object is durable and queues it after the
    answer (deid.intake.receiver.store_answer_first): the peer has the answer by then."""
    import socket

    peer = _Peer()
    seen: list[bytes] = []

    def then() -> None:
        peer.socket.setblocking(False)
        try:
            seen.append(peer.socket.recv(65536, socket.MSG_PEEK))
        except BlockingIOError:
            seen.append(b"")
        peer.socket.setblocking(True)

    reader = peer.association.dul._read_pdu_data
    reader.store = lambda parts: (0x0000, then)
    try:
        peer.send(_pdu((1, 0x03, _store_command()), (1, 0x02, b"\x00" * 64)))
        response = pdata.store_response_command(CT.encode(), INSTANCE.encode(), 7, 0x0000)
        assert seen == [_pdu((1, 0x03, response))]
    finally:
        peer.close()
