"""A modality re-used one SOP Instance UID in two series (or someone edited a copy into another
series): whichever content is released first stays the only one under that UID, over the whole
output and across runs with the same records folder (`deid run --workers 2`), and over the whole
node; the other is quarantined as `duplicate-instance`. The same content again is not a duplicate.
With several workers, which of the two is first depends on timing."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from servenode import Node, Storescp, storescu, wait_until
from support import deid, run_args, tree

from deid.spool import read_stats
from deid.synthetic import four_phase_ct, make_patient, write_dataset, write_datasets


def _series(folder: Path) -> tuple[list[Path], Dataset]:
    patient = make_patient(8)
    images = four_phase_ct(patient, slices=4, size=16)["P"]
    other = copy.deepcopy(images[0])  # same SOP Instance UID, another series, other content
    other.SeriesInstanceUID = patient.series_uid("RECONSTRUCTED-AGAIN")
    other.SeriesDescription = "reconstructed again"
    whole = write_datasets(images, folder / "series-1")
    write_dataset(other, folder / "series-2" / "again.dcm")
    return whole, other


def _by_uid(files: list[Path]) -> dict[str, list[Dataset]]:
    found: dict[str, list[Dataset]] = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found.setdefault(str(ds.SOPInstanceUID), []).append(ds)
    return found


def _codes(quarantine: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["code"] for p in quarantine.rglob("reason.json"))


def test_deid_run_with_two_workers_releases_one_content_per_uid(
    tmp_path: Path, key_file: Path
) -> None:
    whole, _other = _series(tmp_path / "in")
    shutil.copy(whole[0], tmp_path / "in" / "series-1-copy.dcm")  # the same content again: fine
    out, records = tmp_path / "out", tmp_path / "records"

    first = deid(*run_args(tmp_path / "in", out, key_file, "--workers", "2", "--records", records))

    assert first.returncode == 3, first.stdout + first.stderr
    released = _by_uid(list(out.rglob("*.dcm")))
    assert len(released) == len(whole) and all(len(v) == 1 for v in released.values())
    # one entry: the other content (or, when it won, the first one and its identical copy)
    assert _codes(tmp_path / "out-quarantine") == ["duplicate-instance"]
    before = tree(out)

    # a later run with the same records: a third content under the UID, in yet another series
    third = pydicom.dcmread(whole[0])
    third.SeriesInstanceUID = third.SeriesInstanceUID + ".3"
    third.SeriesDescription = "a third try"
    write_dataset(third, tmp_path / "later" / "third.dcm")
    later = run_args(tmp_path / "later", out, key_file, "--workers", "2", "--records", records)
    second = deid(*later)

    assert second.returncode == 3, second.stdout + second.stderr
    assert "duplicate-instance 1" in second.stdout
    assert tree(out) == before  # nothing new under the UID, nothing overwritten


def test_the_node_forwards_one_content_per_uid(tmp_path: Path, key_file: Path) -> None:
    whole, other = _series(tmp_path / "in")
    files = [*whole, tmp_path / "in" / "series-2" / "again.dcm"]
    with (
        Storescp(tmp_path / "destination", None, "+uf") as destination,  # keeps every copy it gets
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{destination.port}"]) as node,
    ):
        storescu(node.port, files)
        wait_until(
            lambda: (s := read_stats(node.data))["forwarded"] + s["quarantined"] == len(files),
            60,
            "every object finished",
        )
        # later, the same object again is forwarded again; another content under the UID is not
        storescu(node.port, [whole[0], files[-1]])
        wait_until(
            lambda: (s := read_stats(node.data))["forwarded"] + s["quarantined"] == len(files) + 2,
            60,
            "the second sending finished",
        )
        assert node.terminate() == 0
    stats = read_stats(node.data)
    # the first content under the UID went out twice, the other one never
    assert (stats["forwarded"], stats["quarantined"]) == (len(whole) + 1, 2)
    received = _by_uid(destination.instances())
    assert len(received) == len(whole)
    repeated = [copies for copies in received.values() if len(copies) > 1]
    assert len(repeated) == 1 and len(repeated[0]) == 2
    assert len({str(ds.SeriesInstanceUID) for ds in repeated[0]}) == 1
    assert _codes(node.data / "quarantine") == ["duplicate-instance"]  # (one entry per original)
