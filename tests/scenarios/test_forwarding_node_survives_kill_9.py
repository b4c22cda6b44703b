"""The node is killed with SIGKILL several times, mid-receive, right after a restart and
mid-forward; after the last restart the destination holds exactly one de-identified copy of every
object that was ever answered success, and nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
from servenode import Node, Storescp, acknowledged, start_storescu, wait_until
from support import phi_found, release

from deid.spool import read_stats
from deid.synthetic import make_patient
from deid.synthetic.many import write_many_ct_slices

N = 200


def _stat(node: Node, name: str) -> float:
    try:
        return read_stats(node.data)[name]
    except Exception:  # the database may not exist yet right after the first start
        return 0


def test_kill_9_at_any_moment_loses_nothing_and_doubles_nothing(
    tmp_path: Path, key_file: Path, vghtpe, key
) -> None:
    patient = make_patient(7)
    files = write_many_ct_slices(tmp_path / "in", N, patient, size=16)
    acked: set[str] = set()

    def send_until(node: Node, condition, what: str) -> None:
        """Send what is not yet acknowledged; SIGKILL the node when ``condition`` holds."""
        sender = start_storescu(node.port, [p for p in files if str(p) not in acked])
        try:
            wait_until(lambda: condition() or sender.poll() is not None, 120, what, interval=0.02)
            node.kill9()
        finally:
            output, _ = sender.communicate(timeout=60)
            acked.update(acknowledged(output))

    with Storescp(tmp_path / "destination") as destination:
        node = Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{destination.port}"])
        try:
            node.start()  # 1: kill in the middle of receiving
            send_until(node, lambda: _stat(node, "received") >= 40, "40 objects received")
            assert 0 < len(acked) < N
            node.start()  # 2: again, later in the stream, while workers forward
            send_until(node, lambda: _stat(node, "received") >= 110, "110 objects received")
            node.start()  # 3: right after a restart, while it recovers
            time.sleep(0.3)
            node.kill9()
            node.start()  # 4: everything sent, kill while forwarding
            sender = start_storescu(node.port, [p for p in files if str(p) not in acked])
            output, _ = sender.communicate(timeout=120)
            acked.update(acknowledged(output))
            forwarded = _stat(node, "forwarded")
            wait_until(
                lambda: _stat(node, "forwarded") >= forwarded + 20 or _stat(node, "depth") == 0,
                60,
                "forwarding to go on",
            )
            node.kill9()
            assert len(acked) == N
            node.start()  # 5: let it finish
            wait_until(lambda: _stat(node, "depth") == 0, 120, "the spool to empty")
            assert node.terminate() == 0
        finally:
            node.__exit__()
        received = destination.instances()

    expected = {release(p, vghtpe, key)[0].SOPInstanceUID for p in files}
    found = [pydicom.dcmread(p) for p in received]
    assert (
        len(found) == N and {ds.SOPInstanceUID for ds in found} == expected
    )  # exactly N, each de-identified
    for path, ds in zip(received, found):
        assert ds.PatientIdentityRemoved == "YES"
        assert phi_found(path.read_bytes(), patient) == []
    stats = read_stats(node.data)
    assert stats["lost"] == 0 and stats["quarantined"] == 0 and stats["depth"] == 0
    assert list((node.data / "spool" / "incoming").iterdir()) == []
