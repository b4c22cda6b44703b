"""A modality sends a study with one object that crashes whatever de-identifies it (a C decoder
dying on its pixels, say). The node's workers die on it; each is replaced; the object is counted
against, never the ones the dead worker held beside it (its last object, still being sent, and its
batch), and after three deaths it is quarantined `worker-crashed`, its original kept; every other
object arrives de-identified, once."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydicom import dcmread
from servenode import Node, Storescp, storescu, wait_until

from deid.service import MAX_CRASHES
from deid.spool import read_stats
from deid.synthetic.many import write_many_ct_slices

SITE = Path(__file__).resolve().parent.parent / "poisoned_site"


def test_the_object_that_kills_workers_is_quarantined_and_the_others_arrive(
    tmp_path: Path, key_file: Path
) -> None:
    files = write_many_ct_slices(tmp_path / "in", 8, size=16)
    poison = files[3]
    marker = str(dcmread(poison).SOPInstanceUID)
    path = os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with (
        Storescp(tmp_path / "dest") as dest,
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{dest.port}"],
             env={"PYTHONPATH": path, "DEID_TEST_POISON": marker}) as node,
    ):
        storescu(node.port, files)
        stats = wait_until(
            lambda: (s := read_stats(node.data))["forwarded"] == 7
            and s["quarantined"] == 1 and s, 120, "7 forwarded and the poison quarantined")
    assert len(dest.instances()) == 7
    assert {str(dcmread(f).SOPInstanceUID) for f in dest.instances()}.isdisjoint(
        {str(dcmread(f).SOPInstanceUID) for f in files})  # all de-identified
    (entry,) = (node.data / "quarantine").iterdir()
    reason = json.loads((entry / "reason.json").read_text())
    assert reason["code"] == "worker-crashed" and f"died {MAX_CRASHES} times" in reason["message"]
    kept = dcmread(entry / "original.dcm")  # as received (the node wrote its file meta)
    assert kept.SOPInstanceUID == marker and kept.PixelData == dcmread(poison).PixelData
    assert stats["received"] == 8 and stats["retried"] == 0
    log = node.log.read_text()
    assert log.count('"worker-crashed"') == 1 and marker not in log
