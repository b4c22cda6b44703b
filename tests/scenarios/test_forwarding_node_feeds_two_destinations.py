"""Two research PACS: one is up, one is down. The first gets every object at once; the second gets
them when it comes back; neither gets anything twice from the node's point of view (each object
is sent once per destination), and a worker killed on the way is replaced without a loss."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from servenode import Node, Storescp, free_port, node_processes, storescu, wait_until

from deid.spool import read_stats
from deid.synthetic.many import write_many_ct_slices


def _workers(pid: int) -> list[int]:
    return node_processes(pid, "deid-worker")  # once each has named itself


def test_each_destination_gets_each_object_and_a_dead_worker_is_replaced(
    tmp_path: Path, key_file: Path
) -> None:
    files = write_many_ct_slices(tmp_path / "in", 30, size=16)
    late_port = free_port()
    with (
        Storescp(tmp_path / "first") as first,
        Node(
            tmp_path / "data",
            key_file,
            [f"DEST@127.0.0.1:{first.port}", f"DEST@127.0.0.1:{late_port}"],
        ) as node,
    ):
        workers = wait_until(
            lambda: len(_workers(node.process.pid)) == 2 and _workers(node.process.pid),
            30,
            "two workers",
        )
        os.kill(workers[0], signal.SIGKILL)
        storescu(node.port, files)
        wait_until(
            lambda: len(first.instances()) == len(files),
            60,
            "the first destination to have everything",
        )
        assert read_stats(node.data)["forwarded"] == 0  # not yet delivered everywhere
        with Storescp(tmp_path / "late", late_port) as late:
            wait_until(
                lambda: read_stats(node.data)["forwarded"] == len(files), 60, "the late destination"
            )
            assert len(late.instances()) == len(files)
        wait_until(lambda: len(_workers(node.process.pid)) == 2, 30, "the dead worker's replacement")
        assert node.terminate() == 0
    stats = read_stats(node.data)
    assert (stats["depth"], stats["quarantined"], stats["lost"]) == (0, 0, 0)
    import json

    lines = [
        json.loads(line)
        for path in (node.data / "records" / "audit").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    forwarded = [
        (line["sop_uid"], line["destination"]) for line in lines if line["outcome"] == "forwarded"
    ]
    assert (
        len(forwarded) == len(set(forwarded)) == 2 * len(files)
    )  # once per object and destination
    assert "worker died" in node.log.read_text()
