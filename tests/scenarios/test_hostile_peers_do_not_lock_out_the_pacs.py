"""A PACS keeps sending through the forwarding node (`deid serve`) while strangers on the network
hammer its port: bare connections opened and closed without a word, a PDU announcing 4 GiB
before any association, silent connections from several addresses taking every slot.  The PACS
is never locked out, the node does not grow, the strangers are cut, and the log says so without
a patient value."""

from __future__ import annotations

import time
from pathlib import Path

from hostile import FOUR_GIB, closed_by_node, connect, knock, stream_pdu, turned_away
from pydicom.uid import generate_uid
from servenode import Node, Storescp, storescu, wait_until
from support import phi_found

from deid.spool import read_stats
from deid.synthetic import SyntheticPatient, ct_slice, write_datasets


def _rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _send_promptly(port: int, files: list[Path]) -> None:
    started = time.monotonic()
    result = storescu(port, files, "-v", timeout=120)
    assert result.stderr.count("Received Store Response (Success)") == len(files)
    assert time.monotonic() - started < 20  # not pynetdicom's 30 s of lockout


def test_hostile_peers_do_not_lock_out_the_pacs(
    tmp_path: Path, key_file: Path, patient: SyntheticPatient
) -> None:
    series = generate_uid()
    slices = write_datasets(
        [ct_slice(patient, series_uid=series, index=i, size=256) for i in range(3)],
        tmp_path / "in",
    )
    with (
        Storescp(tmp_path / "destination") as destination,
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{destination.port}"],
             env={"DEID_SERVE_HANDSHAKE_TIMEOUT": "3"}) as node,
    ):
        port = node.port
        # 1. twelve bare connections (issue 11 saw "Local Limit Exceeded" for 30 s after them)
        knock(port, 12)
        _send_promptly(port, slices[:1])

        # 2. a PDU announcing 4 GiB before association: refused unread, the node stays small
        before = _rss_mib(node.process.pid)
        greedy = connect(port, "127.0.0.9")
        taken = stream_pdu(greedy, 0x01, FOUR_GIB, limit=256 << 20)
        assert closed_by_node(greedy, within=30)
        greedy.close()
        grown = _rss_mib(node.process.pid) - before
        assert taken < 64 << 20 and grown < 8, (taken, grown)

        # 3. strangers from four addresses take every slot (4 each, 16 in all) and say nothing
        silent = [connect(port, f"127.0.0.{host}") for host in (2, 3, 4, 5) for _ in range(4)]
        try:
            assert turned_away(port, "127.0.0.6")  # no slot left
            _send_promptly(port, slices[1:2])  # the PACS has associated before: known
            # the silent strangers are cut at the handshake timeout
            assert all(closed_by_node(sock, within=30) for sock in silent)
        finally:
            for sock in silent:
                sock.close()
        _send_promptly(port, slices[2:])

        wait_until(lambda: read_stats(node.data)["forwarded"] == 3, 120, "every slice forwarded")
        assert len(destination.instances()) == 3
        assert node.terminate() == 0
    log = node.log.read_text()
    for code in ("handshake-timeout", "pdu-too-large", "unassociated-limit"):
        assert code in log, code
    assert phi_found(log, patient) == []
