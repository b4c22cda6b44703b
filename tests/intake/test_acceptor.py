"""The receiver's associations (deid.intake.acceptor): what it encodes itself is pynetdicom's bytes,
what it leaves to pynetdicom is what pynetdicom would not encode the same way, and an association
whose threads wait for events instead of polling still receives, answers and ends as before."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket
from pynetdicom_offline import CT, offline_association, store_event, store_request
from servenode import NODE, SENDER, spooled, start_receiver, storescu, wait_until

from deid import pynetdicom_waits
from deid.cstore import keep_responses
from deid.intake import acceptor
from deid.intake.acceptor import object_parts, quicken, store_response
from deid.synthetic import make_patient, write_sample_study

ODD = "1.2.826.0.1.3680043.8.498.1"  # 27 characters: padded with a NUL
EVEN = "1.2.826.0.1.3680043.8.498.12"


def _response(status: int, sop_instance: str = ODD, **extra: object) -> C_STORE:
    """A C-STORE response as pynetdicom's storage SCP builds it."""
    rsp = C_STORE()
    rsp.MessageID = 7
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = CT
    rsp.AffectedSOPInstanceUID = sop_instance
    rsp.Status = status
    for name, value in extra.items():
        setattr(rsp, name, value)
    return rsp


def _pynetdicoms_command(rsp: C_STORE) -> bytes:
    """The command set pynetdicom sends for ``rsp`` (its one P-DATA value, minus the header)."""
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    (pdata,) = list(message.encode_msg(1, 16382))
    ((context_id, value),) = pdata.presentation_data_value_list
    assert context_id == 1 and value[0] == 0x03  # a command, its last fragment
    return bytes(value[1:])


@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xC210, 0xB007])
@pytest.mark.parametrize("sop_instance", [ODD, EVEN])
def test_a_status_only_store_response_is_pynetdicoms_bytes(status: int, sop_instance: str) -> None:
    rsp = _response(status, sop_instance)
    assert store_response(rsp) == _pynetdicoms_command(rsp)


def test_other_responses_are_left_to_pynetdicom() -> None:
    assert store_response(_response(0xC210, ErrorComment="cannot decode")) is None
    assert store_response(_response(0xA900, OffendingElement=[0x00100010])) is None
    assert store_response(store_request(ODD)) is None  # a request, not a response
    assert store_response(_response(0, "1.2.3.x4")) is None  # not digits and dots


@pytest.mark.parametrize("sop_instance", [ODD, EVEN, "1.2.3.x4"])
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_a_received_object_is_pynetdicoms_part_10_bytes(sop_instance: str, syntax: str) -> None:
    body = bytes(range(256)) * 40
    event = store_event(sop_instance, syntax, body)
    header, data_set = object_parts(event)
    assert header + bytes(data_set) == event.encoded_dataset(include_meta=True)
    if sop_instance != "1.2.3.x4":
        assert isinstance(data_set, memoryview)  # the data set as received, not copied
        data_set.release()


def test_a_quickened_association_wakes_for_data_and_for_what_is_queued_to_send() -> None:
    association, peer = offline_association()
    quicken(association)
    sock = association.dul.socket
    try:
        association.dul.to_provider_queue.put("an answer")  # wakes the DUL: nothing to read
        assert sock.ready is False and association.dul.to_provider_queue.qsize() == 1
        association.dul.to_provider_queue.get()
        peer.sendall(b"\x04\x00\x00\x00")
        assert sock.ready is True
        threading.Timer(0.05, peer.sendall, [b"\x00\x04abcd"]).start()  # the rest comes later
        assert bytes(sock.recv(10)) == b"\x04\x00\x00\x00\x00\x04abcd"
        peer.close()
        assert bytes(sock.recv(10)) == b""  # the peer closed: what there is, as pynetdicom
    finally:
        sock.close()


def test_a_quickened_association_hands_messages_to_its_thread_as_they_come() -> None:
    association, peer = offline_association()
    quicken(association)
    try:
        threading.Timer(0.05, association.dimse.msg_queue.put, [(1, "a message")]).start()
        # the association thread's non-blocking look waits for the message (up to WAIT)
        got = (None, None)
        for _ in range(100):  # (pynetdicom's loop: look, find nothing, look again)
            got = association.dimse.get_msg(block=False)
            if got[1] is not None:
                break
        assert got == (1, "a message")
    finally:
        association.dul.socket.close()
        peer.close()


def test_another_pynetdicom_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pynetdicom_waits, "SUPPORTED", False)
    association, peer = offline_association()
    try:
        handler = acceptor.IntakeRequestHandler.__new__(acceptor.IntakeRequestHandler)
        monkeypatch.setattr(acceptor.RequestHandler, "_create_association", lambda _: association)
        assert handler._create_association() is association
        assert type(association.dul.socket) is AssociationSocket
        assert association.dul._run_loop_delay == 0.001
        assert "send_msg" not in vars(association.dimse)  # pynetdicom's own
    finally:
        association.dul.socket.close()
        peer.close()


def test_a_sender_waiting_for_each_answer_gets_every_object_through_and_ends(
    tmp_path: Path,
) -> None:
    """storescu sends 12 objects on one association, each after the last one's answer: every one
    is answered success once spooled, byte for byte, and the association ends with the release."""
    files = write_sample_study(tmp_path / "in", make_patient(3), slices=12, size=32)
    receiver, spool = start_receiver(tmp_path)
    threads = set(threading.enumerate())
    try:
        result = storescu(receiver.settings.port, files, "-v")
        assert result.stderr.count("Received Store Response (Success)") == len(files)
        originals = spooled(tmp_path / "data")
        assert spool.stats()["received"] == len(files) == len(originals)
        tails = {data[-4000:] for data in originals}
        assert tails == {p.read_bytes()[-4000:] for p in files}
        assert receiver.wait_idle(30)
        # the association's threads (its reactor, its DUL) end with it
        wait_until(lambda: set(threading.enumerate()) <= threads, 30, "the threads to end")
    finally:
        receiver.abort_all()


def test_a_pynetdicom_sender_gets_its_answers_and_echoes_on_the_same_association(
    tmp_path: Path,
) -> None:
    objects = [dcmread(p) for p in write_sample_study(tmp_path / "in", make_patient(4), slices=3,
                                                      size=16)]
    receiver, spool = start_receiver(tmp_path)
    ae = AE(ae_title=SENDER)
    for sop_class, syntax in {(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in objects}:
        ae.add_requested_context(sop_class, syntax)
    ae.add_requested_context("1.2.840.10008.1.1")
    try:
        association = ae.associate("127.0.0.1", receiver.settings.port, ae_title=NODE)
        assert association.is_established
        keep_responses(association)  # (pynetdicom's requestor loses one now and then otherwise)
        for ds in objects:
            assert association.send_c_store(ds).Status == 0x0000
            assert association.send_c_echo().Status == 0x0000
        association.release()
        assert spool.stats()["received"] == len(objects)
        assert receiver.wait_idle(30)
    finally:
        receiver.abort_all()


def test_each_association_gets_its_own_list_of_the_shared_contexts() -> None:
    """pynetdicom deep-copies the receiver's contexts for every association; negotiation only
    reads them, so the copy is a new list of the same context objects."""
    contexts = acceptor.SharedContexts([PresentationContext(), PresentationContext()])
    copied = copy.deepcopy(contexts)
    assert copied == list(contexts) and copied is not contexts
    assert all(a is b for a, b in zip(copied, contexts, strict=True))
