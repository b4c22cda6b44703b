"""A hospital runs the node with a release folder as its destination (``destinations: [{folder:
PATH}]`` in the YAML) instead of forwarding: the modality's objects land there de-identified, at
the paths and with the bytes `deid run` gives them, each on disk before its original leaves the
spool; the audit trail names the destination ``folder``."""

from __future__ import annotations

import json
from pathlib import Path

from servenode import Node, storescu, wait_until
from support import deid, phi_found, run_args, tree

from deid.spool import read_stats


def _dicom_tree(folder: Path) -> dict[str, bytes]:
    return {name: data for name, data in tree(folder).items() if name.endswith(".dcm")}


def test_the_node_writes_what_deid_run_releases(tmp_path: Path, sample_study: Path,
                                                key_file: Path, patient) -> None:
    files = sorted(sample_study.rglob("*.dcm"))
    config = tmp_path / "node.yaml"
    config.write_text("destinations:\n  - folder: release\n")
    release = tmp_path / "release"
    with Node(tmp_path / "data", key_file, [], "--config", str(config)) as node:
        sent = storescu(node.port, files, "-v")
        assert sent.stderr.count("Received Store Response (Success)") == len(files)
        wait_until(lambda: read_stats(node.data)["forwarded"] == len(files), 60,
                   "every object written")
        assert node.terminate() == 0
    stats = read_stats(node.data)
    assert (stats["queued"], stats["in_progress"], stats["quarantined"]) == (0, 0, 0)

    reference = tmp_path / "reference"
    done = deid(*run_args(sample_study, reference, key_file, "--profile", "vghtpe"))
    assert done.returncode == 0, done.stderr
    written = _dicom_tree(release)
    assert written == _dicom_tree(reference)  # the same paths, the same bytes
    assert set(tree(release)) == set(written)  # nothing else: no temp file left behind
    for name, data in written.items():
        assert phi_found(name, patient) == [] and phi_found(data, patient) == []

    lines = [json.loads(line) for path in (node.data / "records" / "audit").glob("*.jsonl")
             for line in path.read_text().splitlines()]
    delivered = [line for line in lines if line.get("outcome") == "forwarded"]
    assert sorted(line["output"] for line in delivered) == sorted(written)
    assert {line["destination"] for line in delivered} == {"folder"}
