"""A user runs `deid demo`: the sample patient's SEG and landmark SR are released with its CT,
highdicom reads them, and nothing they reference dangles."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
from support import deid, released_headers, unresolved_references


def test_the_demo_releases_the_seg_with_its_images(tmp_path: Path) -> None:
    result = deid("demo", tmp_path / "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SEG" in result.stdout
    report = tmp_path / "demo" / "report" / "report.html"
    assert ["report", str(report)] in [line.split()[:2] for line in result.stdout.splitlines()]
    assert report.is_file()
    out = tmp_path / "demo" / "output"
    headers = released_headers(out)
    (seg_uid,) = [uid for uid, ds in headers.items() if ds.Modality == "SEG"]
    assert {ds.Modality for ds in headers.values()} == {"CT", "RTSTRUCT", "SEG", "SR"}
    assert unresolved_references(headers) == []
    (path,) = [p for p in out.rglob("*.dcm") if p.stem == seg_uid]
    seg = hd.seg.segread(path)
    assert {sop for _study, _series, sop in seg.get_source_image_uids()} <= set(headers)
    (sr_uid,) = [uid for uid, ds in headers.items() if ds.Modality == "SR"]
    (path,) = [p for p in out.rglob("*.dcm") if p.stem == sr_uid]
    groups = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    assert len(groups) == 30  # 15 landmarks, as SCOORD and SCOORD3D
