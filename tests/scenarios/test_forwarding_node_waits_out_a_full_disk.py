"""The forwarding node's disk fills up after it acknowledged a study: it refuses new objects
(0xA700), its workers wait without crashing (same processes, no traceback, a few log lines),
/healthz and `deid status` say why, and once space is back everything reaches the research PACS
once, nothing lost, nothing quarantined.

The data folder is a real, small file system (a tmpfs; mounting needs root) filled with a
ballast file."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pydicom
from servenode import DEST, Node, Storescp, free_port, node_processes, storescu, wait_until
from smalldisk import fill, small_disk

from deid.synthetic.identity import make_patient
from deid.synthetic.many import write_many_ct_slices

OBJECTS = 12
WORKERS = 2


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    return {
        name: float(value)
        for name, value in (line.split() for line in lines if not line.startswith("#"))
    }


def _workers(node_pid: int) -> set[int]:
    """The node's worker processes (not its resource tracker, nor the destinations' senders)."""
    return set(node_processes(node_pid, "deid-worker"))


def test_forwarding_node_waits_out_a_full_disk(tmp_path: Path, key_file: Path) -> None:
    files = write_many_ct_slices(tmp_path / "study", OBJECTS, size=16)
    late = write_many_ct_slices(tmp_path / "late", 1, make_patient(1), size=16)
    dest_port, status_port = free_port(), free_port()
    destination = Storescp(tmp_path / "destination", dest_port, "-v")
    with small_disk(tmp_path / "disk", size_mb=16) as disk:
        node = Node(
            disk / "data",
            key_file,
            [f"{DEST}@127.0.0.1:{dest_port}"],
            "--status-port",
            str(status_port),
            workers=WORKERS,
            env={"DEID_SERVE_MIN_FREE_MB": "1"},
        )
        node.log = tmp_path / "serve.log"  # the node's log is not on the disk that fills
        try:
            node.start()
            # the research PACS is not up yet: the study is acknowledged and waits in the spool
            storescu(node.port, files)
            wait_until(lambda: node.status()["processed"] == OBJECTS, 60, "the study to wait")
            workers = wait_until(lambda: _workers(node.process.pid), 30, "the worker processes")
            assert len(workers) == WORKERS

            ballast = fill(disk)
            destination.start()  # the PACS is back, but the node's disk is full
            wait_until(
                lambda: _metrics(status_port)["deid_storage_refusals_total"] >= 6 * WORKERS,
                120,
                "the workers to be refused several times (backing off)",
            )
            code, health = _health(status_port)
            status = node.status()
            refused = storescu(node.port, late, "-v", check=False)
            metrics = _metrics(status_port)
            during = {
                "workers": _workers(node.process.pid),
                "received": destination.received(),
                "node running": node.process.poll() is None,
            }

            ballast.unlink()
            wait_until(lambda: node.status()["forwarded"] == OBJECTS, 120, "the spool to drain")
            wait_until(lambda: _health(status_port)[0] == 200, 60, "the node to be healthy")
            storescu(node.port, late)  # accepted again
            wait_until(lambda: node.status()["forwarded"] == OBJECTS + 1, 60, "the late object")
            after_workers = _workers(node.process.pid)
            assert node.terminate() == 0
        finally:
            node.__exit__()
            destination.stop()
        queue = sqlite3.connect(disk / "data" / "spool" / "queue.sqlite")
        try:
            crashes = queue.execute("SELECT MAX(crashes) FROM items").fetchone()[0]
        finally:
            queue.close()
        final = node.status()

    # while full: refusing (0xA700), the same worker processes waiting, nothing sent, and why
    assert "Refused: OutOfResources" in refused.stderr or "0xa700" in refused.stderr.lower()
    assert "Success" not in refused.stderr
    assert during == {"workers": workers, "received": [], "node running": True}
    assert code == 503 and health["status"] == "unavailable"
    assert "spool disk full: 0 MiB free, needs 1.0 MiB" in health["reason"]
    assert health["storage_unavailable"] == 1 and health["disk_free_bytes"] == 0
    assert status["storage"] == "spool disk full: 0 MiB free, needs 1.0 MiB"
    assert status["depth"] == OBJECTS and status["forwarded"] == 0
    assert metrics["deid_up"] == 0 and metrics["deid_storage_unavailable"] == 1
    log = node.log.read_text()
    assert "Traceback" not in log and "worker died" not in log
    waits = log.count("storage refuses writes; waiting")
    assert 1 <= waits <= 2 * WORKERS, log[-3000:]
    assert "storage takes writes again; resuming" in log

    # after: everything arrived once, de-identified; nothing lost, quarantined or crashed on
    assert after_workers == workers and crashes == 0
    assert (final["depth"], final["quarantined"], final["lost"]) == (0, 0, 0)
    assert final["storage"] == "ok"
    received = destination.received()
    assert len(received) == OBJECTS + 1
    assert destination.log.read_text().count("Received Store Request") == OBJECTS + 1
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in received]
    assert all(ds.PatientIdentityRemoved == "YES" for ds in datasets)
    assert len({ds.SOPInstanceUID for ds in datasets}) == OBJECTS + 1
