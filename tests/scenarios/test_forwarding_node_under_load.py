"""Four modalities send at once, 250 objects each over their own association: every store is
answered success and every object reaches the destination de-identified."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
from servenode import Node, Storescp, acknowledged, start_storescu, wait_until

from deid.spool import read_stats
from deid.synthetic import make_patient
from deid.synthetic.many import write_many_ct_slices

SENDERS, EACH = 4, 250


def test_four_parallel_associations_of_250_objects_without_a_failure(
    tmp_path: Path, key_file: Path
) -> None:
    batches = [
        write_many_ct_slices(
            tmp_path / f"in{i}", EACH, make_patient(10 + i), size=16, label=f"LOAD{i}"
        )
        for i in range(SENDERS)
    ]
    with (
        Storescp(tmp_path / "destination") as destination,
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{destination.port}"]) as node,
    ):
        started = time.monotonic()
        senders = [start_storescu(node.port, files) for files in batches]
        outputs = [sender.communicate(timeout=300)[0] for sender in senders]
        received = time.monotonic() - started
        assert [sender.returncode for sender in senders] == [0] * SENDERS, outputs
        assert [len(acknowledged(output)) for output in outputs] == [EACH] * SENDERS
        wait_until(
            lambda: read_stats(node.data)["forwarded"] == SENDERS * EACH,
            300,
            "every object forwarded",
            interval=0.5,
        )
        total = time.monotonic() - started
        assert node.terminate() == 0
    stats = read_stats(node.data)
    assert (stats["received"], stats["forwarded"], stats["quarantined"], stats["depth"]) == (
        1000,
        1000,
        0,
        0,
    )
    instances = destination.instances()
    assert len(instances) == SENDERS * EACH
    sample = [pydicom.dcmread(p, stop_before_pixels=True) for p in instances[::50]]
    assert all(ds.PatientIdentityRemoved == "YES" for ds in sample)
    print(
        f"\nload: {SENDERS}x{EACH} objects received in {received:.1f}s "
        f"({SENDERS * EACH / received:.0f}/s), all forwarded after {total:.1f}s "
        f"({SENDERS * EACH / total:.0f}/s)"
    )
