"""The C-STORE request deid.cstore frames itself is what pynetdicom would send, PDU for PDU."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread, dcmwrite
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF
from pynetdicom_offline import offline_association

from deid import cstore
from deid.synthetic import ct_slice, make_patient

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize("instance", ["1.2.3.4", "1.2.3.45", "2.25." + "9" * 39])
def test_the_command_set_is_pynetdicoms_encoding(instance: str) -> None:
    request = C_STORE()
    request.MessageID, request.Priority = 65535, 2
    request.AffectedSOPClassUID, request.AffectedSOPInstanceUID = CT, instance
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    message.command_set.CommandDataSetType = 0x0001
    assert cstore.command_set(65535, CT, instance) == bytes(encode(message.command_set, True, True))


def _pdus(stream: bytes) -> list[P_DATA_TF]:
    pdus, at = [], 0
    while at < len(stream):
        assert stream[at] == 0x04
        length = int.from_bytes(stream[at + 2 : at + 6], "big")
        pdu = P_DATA_TF()
        pdu.decode(stream[at : at + 6 + length])
        pdus.append(pdu)
        at += 6 + length
    return pdus


@pytest.mark.parametrize("max_pdu", [0, 4096, 16384])
def test_the_request_is_cut_into_pdus_the_peer_takes(max_pdu: int) -> None:
    command, dataset = b"c" * 102, bytes(range(256)) * 200  # 51,200 bytes of data set
    pdus = _pdus(bytes(cstore.request_pdus(7, command, memoryview(dataset), max_pdu)))
    items = [item for pdu in pdus for item in pdu.presentation_data_value_items]
    assert all(len(pdu.presentation_data_value_items) == 1 for pdu in pdus)
    if max_pdu:
        assert all(len(pdu) - 6 <= max_pdu for pdu in pdus)
    headers = [item.data[0] for item in items]
    assert headers[0] == 0x03  # the whole command, its last fragment
    assert headers[1:-1] == [0x00] * (len(items) - 2) and headers[-1] == 0x02
    assert {item.presentation_context_id for item in items} == {7}
    assert items[0].data[1:] == command
    assert b"".join(item.data[1:] for item in items[1:]) == dataset


def test_the_file_meta_is_read_from_memory_as_pydicom_reads_it() -> None:
    buffer = io.BytesIO()
    patient = make_patient(1)
    slice_ = ct_slice(patient, series_uid=patient.series_uid("P"), index=0, size=16)
    dcmwrite(buffer, slice_, enforce_file_format=True)
    data = buffer.getvalue()
    meta = cstore.file_meta(data)
    expected = dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    assert meta.sop_class == expected.MediaStorageSOPClassUID
    assert meta.sop_instance == expected.MediaStorageSOPInstanceUID
    assert meta.transfer_syntax == expected.TransferSyntaxUID
    assert data[meta.offset : meta.offset + 2] == b"\x08\x00"  # the data set's first group
    for broken in (data[:100], b"\x00" * 128 + b"DICM", data[: meta.offset - 10]):
        with pytest.raises(ValueError):
            cstore.file_meta(broken)


def test_an_associations_own_loop_cannot_take_the_response_a_send_waits_for() -> None:
    """pynetdicom's loop polls with a non-blocking get_msg; only a blocking one gets messages."""

    class Dimse:
        def __init__(self) -> None:
            self.queue = [(1, "C-STORE-RSP")]

        def get_msg(self, block: bool = False) -> tuple[object, object]:
            return self.queue.pop(0) if self.queue else (None, None)

    class Association:
        dimse = Dimse()

    association = Association()
    cstore.keep_responses(association)
    assert association.dimse.get_msg(block=False) == (None, None)
    assert association.dimse.get_msg() == (None, None)
    assert association.dimse.get_msg(block=True) == (1, "C-STORE-RSP")


def _response_command(status: int, **extra: object) -> bytes:
    """A C-STORE response's command set as pynetdicom encodes it."""
    from pynetdicom.dimse_messages import C_STORE_RSP

    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 5
    rsp.AffectedSOPClassUID = CT
    rsp.AffectedSOPInstanceUID = "1.2.3.4"
    rsp.Status = status
    for name, value in extra.items():
        setattr(rsp, name, value)
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    (pdata,) = list(message.encode_msg(1, 16382))
    ((_, value),) = pdata.presentation_data_value_list
    return bytes(value)


def _answer_pdu(value: bytes) -> bytes:
    """One P-DATA-TF PDU holding ``value`` (control header first) in one PDV, context 1."""
    item = (len(value) + 1).to_bytes(4, "big") + b"\x01" + value
    return b"\x04\x00" + len(item).to_bytes(4, "big") + item


def _requestor():
    """A requestor association on one end of a socket pair, established, its threads never
    started, reading its answers with deid.cstore.ResponseReader; the other end is the peer."""
    association, peer = offline_association("requestor")
    association.dul.state_machine.current_state = "Sta6"
    while not association.dul.event_queue.empty():
        association.dul.event_queue.get_nowait()
    cstore.read_responses(association)
    return association, peer


@pytest.mark.parametrize("status", [0x0000, 0xB007, 0xA700])
def test_a_status_only_answer_is_read_without_pynetdicoms_decoding(status: int) -> None:
    association, peer = _requestor()
    reader = association.dul._read_pdu_data
    try:
        value = _response_command(status)
        peer.sendall(_answer_pdu(value))
        reader.expecting = True  # (as send_c_store sets it while it waits)
        reader()
        assert association.dimse.msg_queue.get_nowait() == (1, cstore.StoreResponse(5, status))
    finally:
        association.dul.socket.close()
        peer.close()


@pytest.mark.parametrize("expecting", [True, False])
def test_other_answers_are_pynetdicoms_primitives(expecting: bool) -> None:
    association, peer = _requestor()
    reader = association.dul._read_pdu_data
    try:
        value = _response_command(0xC000, ErrorComment="cannot read it")
        peer.sendall(_answer_pdu(value))
        reader.expecting = expecting
        reader()
        _, response = association.dimse.msg_queue.get_nowait()
        assert isinstance(response, C_STORE) and response.Status == 0xC000
        assert response.ErrorComment == "cannot read it"
    finally:
        association.dul.socket.close()
        peer.close()
