"""The HTML report opened in a real browser (headless Chromium, network off): charts and review render."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from peers import require_tool

from deid.audit.report import write_report
from deid.synthetic import make_patient
from deid.synthetic.audit_records import release_lines, write_audit_records

NO_NETWORK = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with the network off and a profile folder of the test's own."""
    return subprocess.run([require_tool("chromium"), *NO_NETWORK, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the image data) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8:offset + 8 + length])
        offset += 12 + length
    return width, height, len(set(zlib.decompress(b"".join(chunks))))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    lines = release_lines(3, slices=2, flag_every=2, quarantine_referenced_every=3)
    write_audit_records(folder / "records", lines)
    return write_report(folder / "records", folder / "report")


def test_the_charts_and_the_review_table_render(page: Path, tmp_path: Path) -> None:
    result = chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    dom = result.stdout
    assert "<main>" in dom, result.stderr[-2000:]
    svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.DOTALL)
    assert len(svgs) == 5  # outcomes, modality, SOP class, quarantine reasons, actions
    for svg in svgs:
        assert len(re.findall(r"<rect\b", svg)) >= 2, svg[:300]
    review = re.search(r'<table id="review-table">.*?</table>', dom, flags=re.DOTALL).group(0)
    rows = re.findall(r"<tr\b", review)
    assert len(rows) == 1 + 12  # heading + 12 distinct kept values
    assert review.count('class="flagged"') == 2 and make_patient(0).display_name in review
    assert re.search(r'Port\. Phas 5\.0 B31f</td><td class="n">5</td>', review)  # 6 slices, 1 quarantined
    assert re.search(r'id="card-dangling_references"><b>1</b>', dom)


def test_a_screenshot_shows_the_page(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = chromium(tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    width, height, colours = png_size_and_colours(shot)
    assert (width, height) == (1280, 2400)
    assert colours > 50  # text, bars and tables; a blank page has a handful


@pytest.fixture(scope="module")
def real_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports of a real `deid run` over pydicom's test files and of the synthetic demo (`deid demo`)."""
    import pydicom.data
    from support import deid

    folder = tmp_path_factory.mktemp("real")
    key = folder / "key"
    assert deid("keygen", key).returncode == 0
    corpus = Path(pydicom.data.__file__).parent / "test_files"
    run = deid("run", corpus, "--out", folder / "out", "--key-file", key, "--no-progress")
    assert run.returncode == 3, run.stderr[-2000:]  # pydicom's corpus holds files that must be quarantined
    assert deid("report", folder / "out-records", "--out", folder / "report").returncode == 0
    demo = deid("demo", folder / "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    return {"pydicom": folder / "report" / "report.html", "demo": folder / "demo" / "report" / "report.html",
            "pydicom_summary": folder / "out-records" / "summary.json"}


@pytest.mark.parametrize("name", ["pydicom", "demo"])
def test_a_real_runs_report_reads_well_in_the_browser(real_reports, name: str, tmp_path: Path) -> None:
    page = real_reports[name]
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    assert "<main>" in dom
    headings = re.findall(r"<(?:h[123]|figcaption)\b[^>]*>(.*?)</(?:h[123]|figcaption)>", dom, flags=re.DOTALL)
    texts = [re.sub(r"<[^>]+>", "", text).strip().lower() for text in headings]
    assert len(texts) == len(set(texts)), texts
    assert re.search(r'id="counts-explained">\d+ written by the command: \d+ DICOM objects', dom)
    assert "1.<wbr>2.<wbr>840.<wbr>10008." in dom  # SOP class UIDs wrap at their dots
    if name == "pydicom":  # SR references to images outside the corpus: paths shown with keywords
        summary = json.loads(real_reports["pydicom_summary"].read_text())
        data = json.loads(page.with_name("report.json").read_text())
        assert data["runs"][0]["outcomes"] == {"written": summary["written"], "quarantined": summary["quarantined"]}
        assert data["totals"]["objects_released"] + data["totals"]["annotation_files"] == summary["written"]
        assert "ContentSequence[" in dom and "ReferencedSOPInstanceUID" in dom
        assert not re.search(r"\(0040,A730\)\[\d+\]\.", dom)
    shot = tmp_path / "report.png"
    chromium(tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
    assert png_size_and_colours(shot)[2] > 50
