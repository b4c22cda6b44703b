"""A copy stopped at an element boundary leaves CT files that parse but lack Rows, Columns or
Pixel Data. `deid run` and the forwarding node quarantine them as `incomplete-object` (naming the
first missing attribute), release nothing of them, and let the whole files through."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from servenode import Node, Storescp, storescu, wait_until
from support import deid, run_args

from deid.spool import read_stats
from deid.synthetic import four_phase_ct, make_patient, write_datasets
from deid.synthetic.oddities import ct_cut_at

ROWS, PIXEL_DATA = 0x00280010, 0x7FE00010


def _inputs(folder: Path) -> tuple[list[Path], list[Path]]:
    patient = make_patient(7)
    whole = write_datasets(four_phase_ct(patient, slices=2, size=16)["P"], folder / "whole")
    cut = [ct_cut_at(folder / "cut", ROWS, patient), ct_cut_at(folder / "cut", PIXEL_DATA, patient)]
    return whole, cut


def _reasons(quarantine: Path) -> list[tuple[str, str]]:
    found = [json.loads(p.read_text()) for p in quarantine.rglob("reason.json")]
    return sorted((r["code"], r["path"]) for r in found)


EXPECTED = [("incomplete-object", "(0028,0010)"), ("incomplete-object", "(7FE0,0010)")]


def test_deid_run_quarantines_a_cut_ct(tmp_path: Path, key_file: Path) -> None:
    whole, cut = _inputs(tmp_path / "in")

    result = deid(*run_args(tmp_path / "in", tmp_path / "out", key_file))

    assert result.returncode == 3, result.stdout + result.stderr
    assert "incomplete-object 2" in result.stdout
    released = list((tmp_path / "out").rglob("*.dcm"))
    assert len(released) == len(whole)
    assert all("PixelData" in pydicom.dcmread(p) for p in released)
    assert _reasons(tmp_path / "out-quarantine") == EXPECTED


def test_the_node_quarantines_a_cut_ct_and_forwards_only_whole_ones(
    tmp_path: Path, key_file: Path
) -> None:
    whole, cut = _inputs(tmp_path / "in")
    with (
        Storescp(tmp_path / "destination") as destination,
        Node(tmp_path / "data", key_file, [f"DEST@127.0.0.1:{destination.port}"]) as node,
    ):
        sent = storescu(node.port, [cut[0], *whole, cut[1]], "-v")
        # acknowledged: the node holds them durably; what it cannot release waits in quarantine
        assert sent.stderr.count("Received Store Response (Success)") == len(whole) + 2
        wait_until(
            lambda: (s := read_stats(node.data))["forwarded"] + s["quarantined"] == len(whole) + 2,
            60,
            "every object finished",
        )
        assert node.terminate() == 0
    stats = read_stats(node.data)
    assert (stats["forwarded"], stats["quarantined"], stats["depth"]) == (len(whole), 2, 0)
    received = destination.instances()
    assert len(received) == len(whole)
    assert all("PixelData" in pydicom.dcmread(p) for p in received)
    assert _reasons(node.data / "quarantine") == EXPECTED
