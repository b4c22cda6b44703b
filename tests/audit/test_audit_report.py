"""deid report: counts in JSON and CSV, escaping, flagged values first, dangling references, caps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from deid.audit.aggregate import Limits, aggregate
from deid.audit.html import breakable
from deid.audit.paths import readable_path
from deid.audit.report import write_report
from deid.errors import UsageError
from deid.synthetic import make_patient
from deid.synthetic.audit_records import (
    CT_IMAGE,
    RT_STRUCTURE_SET,
    audit_line,
    release_lines,
    released,
    write_audit_records,
)

SLICES = 2


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Three patients; the first has a quarantined CT its RTSS references; the first and third have a
    flagged Structure Set Label; every patient has a quarantined screenshot."""
    folder = tmp_path_factory.mktemp("report")
    lines = list(release_lines(3, slices=SLICES, flag_every=2, quarantine_referenced_every=3))
    write_audit_records(folder / "records", lines, writers=2)
    html = write_report(folder / "records", folder / "out")
    return html, json.loads((folder / "out" / "report.json").read_text())


def _csv(html: Path, name: str) -> list[dict[str, str]]:
    with open(html.parent / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_counts_by_patient_study_series_modality_and_class(report) -> None:
    _, data = report
    totals = data["totals"]
    objects = 3 * (4 * SLICES + 1) - 1  # one CT of the first patient was quarantined
    assert totals["objects_released"] == objects
    assert (totals["patients"], totals["studies"], totals["series"]) == (3, 3, 3 * 5)
    assert data["modalities"] == {"CT": objects - 3, "RTSTRUCT": 3}
    assert {row["name"]: row["objects"] for row in data["sop_classes"]} == {
        "CT Image Storage": objects - 3, "RT Structure Set Storage": 3}
    assert data["outcomes"] == {"written": objects, "quarantined": 4}
    first = released(make_patient(0))
    assert {row["patient_id"]: row["objects"] for row in data["patients"]}[first.patient_id] == 4 * SLICES
    assert all(row["series"] == 5 and row["studies"] == 1 for row in data["patients"])


def test_csv_holds_the_same_counts(report) -> None:
    html, data = report
    counts = {(row["table"], row["key"]): int(row["count"]) for row in _csv(html, "counts")}
    assert counts[("totals", "objects_released")] == data["totals"]["objects_released"]
    assert counts[("modality", "RTSTRUCT")] == 3
    assert counts[("sop_class", RT_STRUCTURE_SET)] == 3
    assert counts[("quarantine_reason", "burned-in-annotation-risk")] == 3
    assert counts[("quarantine_reason", "unreadable")] == 1
    assert len(_csv(html, "series")) == 15
    assert sum(int(row["objects"]) for row in _csv(html, "studies")) == data["totals"]["objects_released"]


def test_quarantine_reasons_say_what_to_do(report) -> None:
    html, data = report
    reasons = {row["code"]: row for row in data["quarantine"]}
    assert reasons["unreadable"]["count"] == 1 and "Fetch the object again" in reasons["unreadable"]["action"]
    assert "Review the pixels" in reasons["burned-in-annotation-risk"]["action"]
    page = html.read_text()
    assert "Fetch the object again" in page and "burned-in-annotation-risk" in page


def test_per_attribute_table_counts_each_action(report) -> None:
    html, data = report
    rows = {(row["tag"], row["action"]): row for row in data["attributes"]}
    objects = data["totals"]["objects_released"]
    assert rows[("(0010,0010)", "case_number")]["objects"] == objects
    assert rows[("(0010,0010)", "case_number")]["keyword"] == "PatientName"
    assert rows[("(0008,0080)", "remove")]["objects"] == objects
    assert data["actions"]["remap_uid"] > objects
    assert any(row["keyword"] == "InstitutionName" for row in _csv(html, "attributes"))


def test_review_lists_every_kept_value_with_counts_flagged_first(report) -> None:
    html, data = report
    flagged = data["review"]["flagged"]
    assert [row["value"] for row in flagged] == sorted(
        f"Liver tumour {make_patient(i).display_name}" for i in (0, 2))
    values = {a["attribute"]: {r["value"]: r["objects"] for r in a["values"]} for a in data["review"]["attributes"]}
    assert values["SeriesDescription"]["Pre. Phas 5.0 B31f"] == 3 * SLICES
    assert values["SeriesDescription"]["Port. Phas 5.0 B31f"] == 3 * SLICES - 1
    assert values["StudyDescription"]["CT SCAN-UPPER ABDOMEN"] == data["totals"]["objects_released"]
    assert values["StructureSetLabel"]["Liver tumour"] == 1
    rows = _csv(html, "review")
    assert [row["flagged"] for row in rows[:2]] == ["yes", "yes"] and not any(r["flagged"] for r in rows[2:])
    page = html.read_text()
    assert page.index("Flagged values") < page.index('id="review-table"')
    assert page.index(make_patient(0).display_name) < page.index("Pre. Phas 5.0 B31f")


def test_dangling_references_are_listed_per_study(report) -> None:
    html, data = report
    first = released(make_patient(0))
    assert data["totals"]["dangling_references"] == 1
    (study,) = data["dangling"]
    assert study["study_uid"] == first.study_uid and study["count"] == 1
    (ref,) = study["references"]
    assert ref["uid"] == first.instance(make_patient(0), "P", 0)
    assert ref["sop_uid"] == first.instance(make_patient(0), "RTSS", 0)
    assert ref["path"].endswith("(3006,0016)[0]") and ref["problem"] == "not released"
    assert [row["uid"] for row in _csv(html, "dangling")] == [ref["uid"]]
    assert breakable(ref["uid"]) in html.read_text()  # shown with break points after its dots
    assert ref["element"] == readable_path(ref["path"]) and ref["element"].endswith("ContourImageSequence[0]")


def _write(folder: Path, lines: list[dict]) -> Path:
    write_audit_records(folder / "records", lines)
    return folder / "records"


def test_html_escapes_untrusted_values(tmp_path: Path) -> None:
    ids = released(make_patient(0))
    nasty = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "A & B",
             "abc\u202edcba", "line\x00break"]
    line = audit_line(patient_id=ids.patient_id, study_uid=ids.study_uid, series_uid="2.25.1",
                      sop_uid="2.25.2", modality="<b>CT</b>", kept_text={"ImageComments": nasty},
                      flagged_text=["ImageComments"])
    line["reason"] = "<i>"
    quarantined = audit_line(outcome="quarantined", reason="<svg onload=alert(1)>")
    html = write_report(_write(tmp_path, [line, quarantined]), tmp_path / "out")
    page = html.read_text()
    assert "<script>" not in page and "<img" not in page and "<svg onload" not in page and "<b>CT" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "A &amp; B" in page and "abc\\u202edcba" in page and "\u202e" not in page
    assert "line\\u0000break" in page and "&lt;svg onload=alert(1)&gt;" in page
    assert "Content-Security-Policy" in page and "<script" not in page.lower()


def test_csv_cells_cannot_run_as_formulas(tmp_path: Path) -> None:
    line = audit_line(sop_uid="2.25.3", kept_text={"ImageComments": ["=HYPERLINK(\"http://x\")"]})
    html = write_report(_write(tmp_path, [line]), tmp_path / "out")
    (row,) = [r for r in _csv(html, "review") if r["attribute"] == "ImageComments"]
    assert row["value"] == "'=HYPERLINK(\"http://x\")"


def test_each_object_counts_once_and_cut_lines_are_reported(tmp_path: Path) -> None:
    lines = list(release_lines(1, slices=1, screenshot=False))
    skipped = [dict(line, outcome="skipped", run_id="second") for line in lines]
    records = _write(tmp_path, lines + skipped)
    with open(records / "audit" / "run-0.jsonl", "a") as handle:
        handle.write('{"time": "2026-11-30T16:30:00Z", "outcome": "writ')  # cut by a crash
    agg = aggregate(records)
    assert agg.objects == 5 and agg.modalities == {"CT": 4, "RTSTRUCT": 1}
    assert agg.outcomes == {"written": 5, "skipped": 5}
    assert agg.bad_lines == 1 and set(agg.runs) == {"0123456789ab", "second"}
    assert agg.review["SeriesDescription"]["Pre. Phas 5.0 B31f"].objects == 1
    assert not agg.dangling_counts


def test_a_reference_to_an_object_of_another_class_is_dangling(tmp_path: Path) -> None:
    target = audit_line(sop_uid="2.25.10", sop_class_uid=CT_IMAGE)
    ref = {"kind": "instance", "uid": "2.25.10", "sop_class_uid": RT_STRUCTURE_SET, "path": "(0008,1140)[0]"}
    series = {"kind": "series", "uid": "2.25.999", "sop_class_uid": "", "path": "(0020,000E)"}
    source = audit_line(sop_uid="2.25.11", study_uid="2.25.5", references=[ref, series])
    agg = aggregate(_write(tmp_path, [target, source]))
    assert [r["problem"] for r in agg.dangling["2.25.5"]] == ["SOP class differs"]
    assert agg.references_checked == 2


def test_distinct_values_are_capped_but_counted_and_flagged_ones_kept(tmp_path: Path) -> None:
    lines = [audit_line(sop_uid=f"2.25.{n}", kept_text={"ImageComments": [f"comment {n}"]}) for n in range(20)]
    lines.append(audit_line(sop_uid="2.25.99", kept_text={"ImageComments": ["names the patient"]},
                            flagged_text=["ImageComments"]))
    agg = aggregate(_write(tmp_path, lines), Limits(values_per_attribute=5))
    listed = agg.review["ImageComments"]
    assert len(listed) == 6 and listed["names the patient"].flagged == 1
    assert agg.review_unlisted["ImageComments"] == 15


def test_a_folder_without_audit_records_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no audit records"):
        write_report(tmp_path, tmp_path / "out")


def test_service_events_count_each_object_once(tmp_path: Path) -> None:
    """deid serve writes, retries and forwards: events are counted, the object once."""
    line = audit_line(source="serve", sop_uid="2.25.7", series_uid="2.25.8", study_uid="2.25.9", patient_id="p")
    retrying = dict(line, outcome="retrying", destination="PACS")
    forwarded = dict(line, outcome="forwarded", destination="PACS")
    query = {"time": "2026-11-30T17:00:00Z", "outcome": "reidentify-query", "run_id": "q"}
    agg = aggregate(_write(tmp_path, [line, retrying, forwarded, query]))
    assert agg.outcomes == {"written": 1, "retrying": 1, "forwarded": 1, "reidentify-query": 1}
    assert agg.objects == 1 and agg.series["2.25.8"][3] == 1


def test_the_page_loads_nothing_from_anywhere(report) -> None:
    import re

    html, _ = report
    page = html.read_text()
    assert re.findall(r'(?:src|href)="([^"#][^"]*)"', page) == []
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "<script" not in page and "@import" not in page and "url(" not in page


def test_burned_in_text_is_shown_after_blanking_with_kept_text_first(tmp_path: Path) -> None:
    import numpy as np

    from deid.engine.burned_in import png_data_uri

    thumbnail = png_data_uri(np.zeros((20, 40), dtype=np.uint8))
    blanked = audit_line(sop_uid="2.25.10", modality="US")
    blanked["pixels"] = {"regions": 3, "read": True, "words_found": 5, "words_kept": 0, "frames_read": 1,
                         "thumbnails": [thumbnail] * 3, "kept_thumbnails": [], "transfer_syntax": ""}
    kept = audit_line(sop_uid="2.25.11", modality="US")
    kept["pixels"] = {"regions": 1, "read": True, "words_kept": 2, "thumbnails": [thumbnail],
                      "kept_thumbnails": ["javascript:alert(1)", thumbnail, 'x" onerror="alert(1)']}
    html = write_report(_write(tmp_path, [blanked, kept, audit_line(sop_uid="2.25.12")]), tmp_path / "out")
    page = html.read_text()
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["pixels"]["objects"] == 2 and data["pixels"]["regions"] == 4
    assert data["pixels"]["kept_objects"] == 1 and data["pixels"]["listed"][0]["sop_uid"] == "2.25.11"
    assert page.count('class="thumb"') == 5  # the two unsafe "images" are not shown
    assert "javascript:" not in page and "onerror" not in page
    assert "img-src data:" in page and "Text kept in the pixels" in page
    assert [row["sop_uid"] for row in _csv(html, "pixels")] == ["2.25.11", "2.25.10"]
