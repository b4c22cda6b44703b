"""The receiver against hostile peers (raw sockets on 127.0.0.x) with DCMTK as the honest sender:
bare connections, silent ones, huge PDUs before and after association, a silent peer on the TLS
port.  Bounds on time are generous: they only tell "promptly" from pynetdicom's 30 s."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from hostile import (
    FOUR_GIB,
    associated,
    closed_by_node,
    connect,
    knock,
    pdu_header,
    stream_pdu,
    turned_away,
)
from pydicom.uid import generate_uid
from servenode import SENDER, echoscu, start_receiver, storescu, wait_until

from deid.errors import UsageError
from deid.intake.guard import FIRST_PDU_MAX, Gate, Limits
from deid.intake.receiver import Receiver
from deid.settings import load_settings
from deid.synthetic import ct_slice, make_patient, write_datasets
from deid.synthetic.certificates import write_tls_material


def _receiver(tmp_path: Path, *allow: str, **flags: object) -> Receiver:
    return start_receiver(tmp_path, *allow, **flags)[0]


@pytest.fixture
def ct(tmp_path: Path) -> list[Path]:
    """One CT slice of 256 x 256 (128 KiB of pixels: several PDUs at the negotiated maximum)."""
    ds = ct_slice(make_patient(3), series_uid=generate_uid(), index=0, size=256)
    return write_datasets([ds], tmp_path / "in")


def _acceptor_threads() -> int:
    return len([t for t in threading.enumerate() if "AcceptorThread" in t.name])


def test_bare_connections_opened_and_closed_do_not_lock_out_a_sender(
    tmp_path: Path, ct: list[Path]
) -> None:
    # a long handshake timeout: the slots must come back because the peers closed, not by time
    receiver = _receiver(tmp_path, handshake_timeout=30, max_pdu_size=16384)
    try:
        port = receiver.settings.port
        knock(port, 24)
        started = time.monotonic()
        result = storescu(port, ct, "-v", timeout=60)
        assert result.stderr.count("Received Store Response (Success)") == 1
        assert time.monotonic() - started < 20  # not the handshake timeout (30 s)
        assert receiver.spool.stats()["received"] == 1
        # nothing is left held: no slot, no association, no thread waiting for a request
        wait_until(lambda: receiver.gate.counts()["unassociated"] == 0, 15, "slots freed")
        wait_until(lambda: _acceptor_threads() == 0, 15, "association threads ended")
        assert receiver.gate.counts()["associations"] == 0
    finally:
        receiver.abort_all()


def test_strangers_holding_every_slot_never_block_a_known_sender(
    tmp_path: Path, ct: list[Path]
) -> None:
    receiver = _receiver(
        tmp_path, handshake_timeout=60, max_unassociated=6, max_unassociated_per_address=4
    )
    port = receiver.settings.port
    silent: list = []
    try:
        assert echoscu(port).returncode == 0  # 127.0.0.1 has associated: a known sender now
        # strangers take every slot: four from one address (a fifth is refused), two from another
        silent = [connect(port, "127.0.0.2") for _ in range(4)]
        silent[0].sendall(pdu_header(0x01, 1000) + b"\0" * 10)  # a request that never ends
        wait_until(lambda: receiver.gate.counts()["strangers"] == 4, 15, "four admitted")
        assert turned_away(port, "127.0.0.2")  # per-address cap
        silent += [connect(port, "127.0.0.3") for _ in range(2)]
        wait_until(lambda: receiver.gate.counts()["strangers"] == 6, 15, "six admitted")
        assert turned_away(port, "127.0.0.4")  # total cap
        # the known sender is not kept waiting behind them
        result = storescu(port, ct, "-v", timeout=60)
        assert result.stderr.count("Received Store Response (Success)") == 1
        assert receiver.gate.counts()["strangers"] == 6  # they were there all along
    finally:
        for sock in silent:
            sock.close()
        receiver.abort_all()


def test_silent_peers_are_cut_at_the_handshake_timeout(tmp_path: Path) -> None:
    receiver = _receiver(tmp_path, handshake_timeout=2, max_unassociated_per_address=2)
    port = receiver.settings.port
    silent = [connect(port, "127.0.0.2"), connect(port, "127.0.0.2")]
    try:
        silent[0].sendall(pdu_header(0x01, 1000) + b"\0" * 10)  # a request that never ends
        # each is cut by the node, well before pynetdicom's 30 s
        assert all(closed_by_node(sock, within=20) for sock in silent)
        wait_until(lambda: receiver.gate.counts()["unassociated"] == 0, 15, "slots freed")
        wait_until(lambda: _acceptor_threads() == 0, 15, "association threads ended")
        # and the address may connect again
        again = connect(port, "127.0.0.2")
        wait_until(lambda: receiver.gate.counts()["strangers"] == 1, 15, "admitted again")
        again.close()
    finally:
        for sock in silent:
            sock.close()
        receiver.abort_all()


def test_a_sender_named_with_its_host_is_known_from_the_start(
    tmp_path: Path, ct: list[Path]
) -> None:
    receiver = _receiver(
        tmp_path, f"{SENDER}@127.0.0.1", max_unassociated=2, max_unassociated_per_address=1,
        handshake_timeout=30,
    )
    port = receiver.settings.port
    silent = [connect(port, "127.0.0.2"), connect(port, "127.0.0.3")]
    try:
        wait_until(lambda: receiver.gate.counts()["strangers"] == 2, 15, "strangers admitted")
        result = storescu(port, ct, "-v", timeout=60)
        assert result.stderr.count("Received Store Response (Success)") == 1
    finally:
        for sock in silent:
            sock.close()
        receiver.abort_all()


@pytest.mark.parametrize("pdu_type", [0x01, 0x04], ids=["associate-rq", "p-data"])
def test_a_pdu_claiming_4_gib_before_association_is_not_read(
    tmp_path: Path, pdu_type: int
) -> None:
    receiver = _receiver(tmp_path)
    try:
        tracemalloc.start()
        sock = connect(receiver.settings.port)
        taken = stream_pdu(sock, pdu_type, FOUR_GIB, limit=64 << 20)
        closed = closed_by_node(sock, within=15)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sock.close()
        assert closed
        assert taken < 32 << 20  # the node stopped taking bytes (only socket buffers filled)
        assert peak < 4 << 20, peak  # nothing of the announced PDU was kept
        assert echoscu(receiver.settings.port).returncode == 0
    finally:
        tracemalloc.stop()
        receiver.abort_all()


def test_a_pdu_over_the_negotiated_maximum_closes_the_association(tmp_path: Path) -> None:
    receiver = _receiver(tmp_path, max_pdu_size=16384)
    try:
        port = receiver.settings.port
        with associated(port) as (sock, limit):
            assert limit == 16384  # what the node announced: never 0 (unlimited)
            wait_until(lambda: receiver.gate.counts()["associations"] == 1, 15, "associated")
            stream_pdu(sock, 0x04, limit + 1, limit=8 << 20)
            assert closed_by_node(sock, within=15)
        wait_until(lambda: receiver.gate.counts()["associations"] == 0, 15, "association ended")
        assert echoscu(port).returncode == 0
    finally:
        receiver.abort_all()


def test_a_silent_peer_on_the_tls_port_blocks_nobody(tmp_path: Path) -> None:
    tls = write_tls_material(tmp_path / "tls")
    receiver = _receiver(
        tmp_path,
        handshake_timeout=2,
        **{"tls.cert": str(tls.server_cert), "tls.key": str(tls.server_key), "tls.ca": str(tls.ca)},
    )
    port = receiver.settings.port
    silent = connect(port, "127.0.0.2")
    try:
        with_client = ["+tls", str(tls.client_key), str(tls.client_cert), "+cf", str(tls.ca)]
        assert echoscu(port, *with_client, "-to", "20").returncode == 0
        assert closed_by_node(silent, within=20)  # cut at the handshake timeout
    finally:
        silent.close()
        receiver.abort_all()


def test_limits_are_settings_and_unlimited_pdus_are_refused(tmp_path: Path) -> None:
    base = {"allow": [SENDER], "destinations": ["DEST@127.0.0.1:1"], "key_file": "k", "data": "d"}
    settings = load_settings(None, environ={}, flags=base)
    assert (settings.max_unassociated_per_address, settings.max_unassociated) == (4, 16)
    assert settings.handshake_timeout == 5 and 4096 <= settings.max_pdu_size <= 16 << 20
    env = {"DEID_SERVE_MAX_PDU_SIZE": "65536", "DEID_SERVE_HANDSHAKE_TIMEOUT": "3",
           "DEID_SERVE_MAX_UNASSOCIATED": "8", "DEID_SERVE_MAX_UNASSOCIATED_PER_ADDRESS": "2"}
    tuned = load_settings(None, environ=env, flags=base)
    assert (tuned.max_pdu_size, tuned.handshake_timeout) == (65536, 3)
    assert (tuned.max_unassociated, tuned.max_unassociated_per_address) == (8, 2)
    with pytest.raises(UsageError, match="max_pdu_size"):
        load_settings(None, environ={"DEID_SERVE_MAX_PDU_SIZE": "0"}, flags=base)
    with pytest.raises(UsageError, match="handshake_timeout"):
        load_settings(None, environ={"DEID_SERVE_HANDSHAKE_TIMEOUT": "0"}, flags=base)
    with pytest.raises(UsageError, match="max_unassociated"):
        load_settings(None, environ={"DEID_SERVE_MAX_UNASSOCIATED": "0"}, flags=base)


def test_pdu_framing_holds_across_any_chunking() -> None:
    """The gate follows PDU boundaries however the bytes arrive, and switches from the fixed
    limit before association to the negotiated one after it."""
    gate = Gate(Limits(per_address=1, total=2, max_pdu=4096, max_associations=1))
    stream = (pdu_header(0x01, 300) + bytes(300)) + (pdu_header(0x04, 4096) + bytes(4096))
    for size in (1, 5, 7, 4096):
        ticket = gate.admit(("127.0.0.2", 40000 + size))
        assert ticket is not None
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert all(ticket.frame(chunk) for chunk in chunks)
        assert gate.admit(("127.0.0.2", 1)) is None  # one slot per address
        gate.release(ticket)
    ticket = gate.admit(("127.0.0.2", 2))
    assert ticket is not None and not ticket.frame(pdu_header(0x01, FIRST_PDU_MAX + 1))
    gate.release(ticket)
    ticket = gate.admit(("127.0.0.3", 3))
    assert ticket is not None
    assert ticket.frame(pdu_header(0x04, 8192)[:3])  # a header in two pieces
    assert ticket.frame(pdu_header(0x04, 8192)[3:] + bytes(8192))  # 8 KiB: fine before
    assert gate.authorise("127.0.0.3", 3)
    assert gate.counts() == {"unassociated": 0, "strangers": 0, "associations": 1}
    assert not ticket.frame(pdu_header(0x04, 8192))  # after: over the negotiated 4096
    assert not gate.authorise("127.0.0.4", 4)  # never admitted: no association
    # 127.0.0.3 is known now: its connections no longer count against the strangers' total
    assert gate.admit(("127.0.0.5", 5)) is not None and gate.admit(("127.0.0.6", 6)) is not None
    assert gate.admit(("127.0.0.7", 7)) is None
    assert gate.admit(("127.0.0.3", 8)) is not None
