"""A research PACS that takes one association at a time (DCMTK storescp without --fork) gets
every object from a two-worker node without stalls: the workers share one association to it
(deid.sender), so neither waits out the other's idle association (forward_timeout, 30 s)."""

from __future__ import annotations

from pathlib import Path

from servenode import DEST, Node, storescu, wait_until
from servers import StoreSCP

from deid.spool import read_stats
from deid.synthetic.many import write_many_ct_slices

OBJECTS = 80  # in two batches: the second reaches both workers, whatever their start-up took


def test_a_plain_storescp_receives_everything_from_two_workers(
    tmp_path: Path, key_file: Path
) -> None:
    files = write_many_ct_slices(tmp_path / "in", OBJECTS, size=16)
    with (
        StoreSCP(tmp_path / "pacs", aet=DEST) as pacs,  # no --fork: one association at a time
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{pacs.port}"], workers=2) as node,
    ):
        half = OBJECTS // 2
        storescu(node.port, files[:half])
        wait_until(lambda: len(pacs.received()) == half, 60, "the first batch at the PACS")
        storescu(node.port, files[half:])
        # a worker waiting for the other's association stalls forward_timeout (30 s) and logs
        # "forward deferred"; a node that shares the association meets this bound many times over
        wait_until(
            lambda: len(pacs.received()) == OBJECTS, 30, "every object at the one-association PACS"
        )
        stats = read_stats(node.data)
        assert node.terminate() == 0
    assert stats["quarantined"] == 0
    assert "forward deferred" not in node.log.read_text()  # nothing waited for the PACS
