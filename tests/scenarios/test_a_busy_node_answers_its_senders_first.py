"""A PACS administrator runs the node on a busy machine: the receiver, which answers the sending
modality, keeps the node's own priority; the workers that de-identify run below it (``worker_nice``,
10 by default), or at the same priority when the administrator sets 0 (a host shared with other
busy programs). The sender processes keep the node's priority too."""

from __future__ import annotations

from pathlib import Path

import pytest
from servenode import Node, Storescp, node_processes, storescu, wait_until

from deid.synthetic.many import write_many_ct_slices


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])




@pytest.mark.parametrize(("environment", "below"), [({}, 10), ({"DEID_SERVE_WORKER_NICE": "0"}, 0)])
def test_workers_run_below_the_receiver_as_set(tmp_path: Path, key_file: Path, environment: dict,
                                               below: int) -> None:
    files = write_many_ct_slices(tmp_path / "in", 3, size=16)
    with (
        Storescp(tmp_path / "dest") as dest,
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{dest.port}"], env=environment) as node,
    ):
        pid = node.process.pid
        workers = wait_until(lambda: len(node_processes(pid, "deid-worker")) == 2
                             and node_processes(pid, "deid-worker"), 30, "two workers")
        (sender,) = wait_until(lambda: node_processes(pid, "deid-sender"), 30, "the sender")
        own = _nice(pid)
        assert [_nice(worker) - own for worker in workers] == [below, below]
        assert _nice(sender) == own
        storescu(node.port, files)  # and they work at that priority
        wait_until(lambda: len(dest.instances()) == 3, 60, "three objects forwarded")
