"""The research PACS is down: objects wait in the spool (also across a restart of the node) and
flow when it comes back; nothing is lost, nothing un-de-identified is sent."""

from __future__ import annotations

from pathlib import Path

import pydicom
from servenode import Node, Storescp, free_port, storescu, wait_until

from deid.spool import read_stats
from deid.synthetic.many import write_many_ct_slices


def test_objects_wait_for_a_destination_that_is_down_then_flow(
    tmp_path: Path, key_file: Path
) -> None:
    files = write_many_ct_slices(tmp_path / "in", 20, size=16)
    port = free_port()
    node = Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{port}"]).start()
    try:
        storescu(node.port, files)
        wait_until(
            lambda: read_stats(node.data)["processed"] == len(files), 60, "every object to wait"
        )
        stats = read_stats(node.data)
        assert (
            stats["forwarded"] == 0
            and stats["depth"] == len(files)
            and stats["processed"] == len(files)
        )
        assert node.terminate() == 0  # the retries are in the spool, not in memory
        node.start()
        wait_until(
            lambda: read_stats(node.data)["retried"] >= 2 * len(files),
            60,
            "retries after the restart",
        )
        with Storescp(tmp_path / "destination", port) as destination:
            wait_until(
                lambda: read_stats(node.data)["forwarded"] == len(files), 60, "the queue to flow"
            )
            received = destination.instances()
        assert node.terminate() == 0
    finally:
        node.__exit__()
    stats = read_stats(node.data)
    assert (stats["depth"], stats["retrying"], stats["quarantined"], stats["lost"]) == (0, 0, 0, 0)
    assert len(received) == len(files)
    assert all(
        pydicom.dcmread(p, stop_before_pixels=True).PatientIdentityRemoved == "YES"
        for p in received
    )
    assert [p for p in (node.data / "outgoing").rglob("*") if p.is_file()] == []
