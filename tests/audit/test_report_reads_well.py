"""A data manager reads the report of a real `deid run`: element paths in keywords, the command's own
figures with the difference to the distinct objects explained, one heading per subject, and long
UIDs and codes that wrap at their separators rather than inside a word."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support import deid, run_args

from deid.audit.html import CSS, breakable
from deid.audit.paths import readable_path
from deid.audit.report import write_report
from deid.synthetic import four_phase_ct, make_patient, write_datasets, write_sample_study
from deid.synthetic.audit_records import audit_line, write_audit_records
from deid.synthetic.fused import lung_patient
from deid.synthetic.sidecars import write_voc


def test_element_paths_carry_keywords() -> None:
    assert readable_path("(0040,A730)[4].(0008,1199)[0].(0008,1155)") == (
        "ContentSequence[4] > ReferencedSOPSequence[0] > ReferencedSOPInstanceUID")
    assert readable_path("(0008,1115)[0].(0008,114a)[2].(0008,1155)") == (
        "ReferencedSeriesSequence[0] > ReferencedInstanceSequence[2] > ReferencedSOPInstanceUID")
    # private tags (their meaning depends on the creator) and unknown tags keep their numbers
    assert readable_path("(0009,1001)[0].(0008,1155)") == "(0009,1001)[0] > ReferencedSOPInstanceUID"
    assert readable_path("(0011,0010)") == "(0011,0010)"
    assert readable_path("(0008,0002)") == "(0008,0002)"
    # paths of another shape (a side-car's field, none at all) are shown as they are
    assert readable_path("$.00080016") == "$.00080016" and readable_path("") == ""


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    """A lung study with two VOC annotation files, released by `deid run` and run again (all
    skipped), each run's report made by `deid report`."""
    root = tmp_path_factory.mktemp("reads-well")
    patient = lung_patient("E", 21)
    images = four_phase_ct(patient, slices=3, size=32)["P"]
    subject = f"{patient.patient_id} {patient.display_name}"
    write_datasets(images, root / "in" / subject)
    for image in images[:2]:
        write_voc(root / "in" / subject, image, patient)
    args = run_args(root / "in", root / "out", key_file, "--profile", "lung-pet-ct-dx")
    first = deid(*args)
    first_summary = json.loads((root / "out-records" / "summary.json").read_text())
    assert deid("report", root / "out-records", "--out", root / "report1").returncode == 0
    again = deid(*args)
    assert deid("report", root / "out-records", "--out", root / "report2").returncode == 0
    return {"root": root, "first": first, "first_summary": first_summary, "again": again,
            "data1": json.loads((root / "report1" / "report.json").read_text()),
            "html1": (root / "report1" / "report.html").read_text(),
            "data2": json.loads((root / "report2" / "report.json").read_text()),
            "html2": (root / "report2" / "report.html").read_text()}


def test_the_reports_counts_are_the_commands(release) -> None:
    assert release["first"].returncode == 0, release["first"].stdout + release["first"].stderr
    summary, data = release["first_summary"], release["data1"]
    assert (summary["written"], summary["quarantined"]) == (5, 0)  # 3 images + 2 annotation files
    assert "5 objects: 5 written" in release["first"].stdout
    (run,) = data["runs"]
    assert run["outcomes"] == {"written": 5} and run["annotations"] == 2
    totals = data["totals"]
    assert (totals["objects_released"], totals["annotation_files"]) == (3, 2)
    sentence = "5 written by the command: 3 DICOM objects and 2 annotation files."
    assert data["counts_explained"] == sentence
    assert f'id="counts-explained">{sentence}</p>' in release["html1"]
    assert 'id="card-annotation_files"><b>2</b>' in release["html1"]


def test_a_rerun_s_skips_are_explained(release) -> None:
    assert "5 objects: 0 written, 5 skipped" in release["again"].stdout
    data = release["data2"]
    assert [run["outcomes"] for run in data["runs"]] == [{"written": 5}, {"skipped": 5}]
    assert (data["totals"]["objects_released"], data["totals"]["annotation_files"]) == (3, 2)
    assert data["counts_explained"].startswith(
        "5 written, 5 skipped by the command over 2 runs: 3 DICOM objects and 2 annotation files, "
        "each counted once (5 outcomes were for one already counted")
    # the runs table shows each run's figures as its command printed them
    rows = re.findall(r"<tr><td class=\"code\">[0-9a-f<wbr>]+</td>.*?</tr>", release["html2"])
    figures = [re.findall(r'<td class="n">(\d+)</td>', row) for row in rows]
    assert figures == [["5", "0", "0", "2"], ["0", "5", "0", "2"]]  # written, skipped, quarantined, annotations


class _Headings(HTMLParser):
    """The text of every heading and figure caption of a page."""

    TAGS = ("h1", "h2", "h3", "figcaption")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.TAGS:
            self._open = tag
            self.found.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self.found[-1] += data


def _headings(html: str) -> list[str]:
    parser = _Headings()
    parser.feed(html)
    return [re.sub(r"\s+", " ", text).strip().lower() for text in parser.found]


def test_each_heading_appears_once(release, tmp_path: Path, key_file: Path) -> None:
    patient = make_patient(3)
    write_sample_study(tmp_path / "in", patient, slices=2, size=16, seg=True, sr=True)
    assert deid(*run_args(tmp_path / "in", tmp_path / "out", key_file)).returncode == 0
    assert deid("report", tmp_path / "out-records", "--out", tmp_path / "report").returncode == 0
    for html in (release["html2"], (tmp_path / "report" / "report.html").read_text()):
        headings = _headings(html)
        assert "outcomes" in headings and "quarantine reasons" in headings
        assert len(headings) == len(set(headings)), sorted(h for h in headings if headings.count(h) > 1)


def test_long_uids_and_codes_wrap_at_their_separators() -> None:
    assert "break-word" not in CSS.replace("overflow-wrap:break-word", "")  # no word-break:break-word
    assert "td.code" in CSS and "overflow-wrap:anywhere" not in CSS
    uid = "1.2.840.10008.5.1.4.1.1.481.3"
    assert breakable(uid) == uid.replace(".", ".<wbr>")
    assert breakable("burned-in-annotation-risk") == "burned-<wbr>in-<wbr>annotation-<wbr>risk"
    assert breakable("2026-12-06T01:43:00Z") == "2026-<wbr>12-<wbr>06T01:<wbr>43:<wbr>00Z"
    path = "ContentSequence[4] > ReferencedSOPSequence[0] > ReferencedSOPInstanceUID"
    assert breakable(path) == path.replace(">", "&gt;<wbr>")  # keywords stay whole
    sha = "0c02caa9f02908485c2866ad7b1fa407f1149dd0c2797210bb5d55721e5e9d59"
    assert breakable(sha).split("<wbr>") == [sha[i:i + 16] for i in range(0, 64, 16)] + [""]
    assert breakable("<b>") == "&lt;b&gt;<wbr>"  # still escaped


def test_the_report_shows_codes_breakable_and_text_whole(release) -> None:
    html = release["html2"]
    assert re.search(r'<td class="code">[0-9a-f]{12}</td>', html)  # a run id
    assert "1.<wbr>2.<wbr>840.<wbr>10008.<wbr>5.<wbr>1.<wbr>4.<wbr>1.<wbr>1.<wbr>2</td>" in html  # CT Image Storage
    assert '<td class="v">CT Image Storage</td>' in html  # words are not cut


def test_a_reidentify_query_is_no_run_of_the_command(tmp_path: Path) -> None:
    lines = [audit_line(patient_id="P1", study_uid="2.25.1", series_uid="2.25.2", sop_uid=f"2.25.{n}")
             for n in (10, 11)]
    lines.append({**audit_line(run_id="", outcome="reidentify-query"), "output": None})
    write_audit_records(tmp_path / "records", lines)
    html = write_report(tmp_path / "records", tmp_path / "report").read_text()
    assert 'id="counts-explained">2 written by the command: 2 DICOM objects.</p>' in html
    assert len(re.findall(r'<tr><td class="code">[0-9a-f]*</td><td class="code">', html)) == 1  # one run
