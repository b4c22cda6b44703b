"""A side-car XML crafted to attack its parser (a billion-laughs bomb, an external entity naming a
local file) sits beside the images: deid refuses it unexpanded (defusedxml, no DTD), quarantines it
as it came with a reason, releases the rest, and nothing of the named file reaches any output."""

from __future__ import annotations

import json
from pathlib import Path

from support import deid, run_args, tree
from test_sidecar import LAUGHS

from deid.synthetic import four_phase_ct, write_datasets
from deid.synthetic.fused import lung_patient

SECRET = "CHEN-MEI-LING-SECRET-0001"


def test_an_xml_bomb_and_an_external_entity_are_quarantined(tmp_path: Path, key_file: Path) -> None:
    patient = lung_patient("E", 4)
    images = four_phase_ct(patient, slices=2, size=32)["N"]
    folder = tmp_path / "incoming" / "case"
    write_datasets(images, folder)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    uid = str(images[0].SOPInstanceUID)
    hostile = {
        folder / f"{uid}.xml": LAUGHS.encode(),
        folder / f"{images[1].SOPInstanceUID}.xml": (
            f'<!DOCTYPE annotation [<!ENTITY who SYSTEM "file://{secret}">]>\n'
            f"<annotation><folder>&who;</folder><filename>{uid}</filename></annotation>\n"
        ).encode(),
    }
    for path, data in hostile.items():
        path.write_bytes(data)

    result = deid(*run_args(tmp_path / "incoming", tmp_path / "out", key_file))

    assert result.returncode == 3, result.stderr
    assert "2 written, 0 skipped (already done), 2 quarantined" in result.stdout
    entries = {}
    for entry in (tmp_path / "out-quarantine").iterdir():
        reason = json.loads((entry / "reason.json").read_text())
        entries[(entry / "original.xml").read_bytes()] = reason
    assert set(entries) == set(hostile.values())  # kept as they came
    for reason in entries.values():
        assert reason["code"] == "sidecar-unknown-format" and reason["stage"] == "sidecar"
        assert "DOCTYPE or entities" in reason["message"]
    released = tree(tmp_path / "out")
    assert not [name for name in released if name.startswith("annotations/")]
    for folder_name in ("out", "out-records"):
        for name, data in tree(tmp_path / folder_name).items():
            assert SECRET.encode() not in data and b"lollol" not in data, name
    assert SECRET not in result.stdout + result.stderr
