"""A sender mixes objects the profile cannot release with good ones: the bad ones are answered
success (they are safe in the spool), go to the quarantine with a reason, and the rest flow."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from servenode import Node, Storescp, storescu, wait_until

from deid.spool import read_stats
from deid.synthetic import make_patient, write_sample_study
from deid.synthetic.oddities import ct_bad_date, secondary_capture


def test_malformed_objects_are_quarantined_while_the_rest_flow(
    tmp_path: Path, key_file: Path
) -> None:
    good = write_sample_study(tmp_path / "in", make_patient(2), slices=2, size=16)
    bad = [ct_bad_date(tmp_path / "bad"), secondary_capture(tmp_path / "bad", burned_in="YES")]
    with (
        Storescp(tmp_path / "destination") as destination,
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{destination.port}"]) as node,
    ):
        sent = storescu(node.port, [bad[0], *good, bad[1]], "-v")
        assert sent.stderr.count("Received Store Response (Success)") == len(good) + 2
        wait_until(
            lambda: (s := read_stats(node.data))["forwarded"] + s["quarantined"] == len(good) + 2,
            60,
            "every object finished",
        )
        assert node.terminate() == 0
    stats = read_stats(node.data)
    assert (stats["forwarded"], stats["quarantined"], stats["depth"]) == (len(good), 2, 0)
    received = destination.instances()
    assert len(received) == len(good)
    assert all(
        pydicom.dcmread(p, stop_before_pixels=True).PatientIdentityRemoved == "YES"
        for p in received
    )
    entries = sorted((node.data / "quarantine").iterdir())
    assert len(entries) == 2
    codes = sorted(json.loads((entry / "reason.json").read_text())["code"] for entry in entries)
    assert codes == ["burned-in-annotation-risk", "rule-not-applicable"]
    assert (node.data / "quarantine").stat().st_mode & 0o777 == 0o700
