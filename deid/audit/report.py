"""`deid report`: a records folder's audit lines as a report a person reads (HTML) and as data
(JSON, CSV).  The report holds released values only: the kept free text is exactly what went out."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.uid import UID

from deid import __version__
from deid.audit.aggregate import Aggregate, Limits, aggregate, audit_files
from deid.audit.cells import spreadsheet_safe
from deid.audit.paths import readable_path
from deid.audit.reasons import describe
from deid.errors import UsageError
from deid.io.writer import write_bytes_atomic
from deid.profile.tags import resolve_tag

HTML_NAME, JSON_NAME = "report.html", "report.json"
CSV_TABLES = ("counts", "quarantine", "attributes", "review", "replaced", "dangling", "patients",
              "studies", "series", "runs", "pixels")


def sop_class_name(uid: str) -> str:
    """'CT Image Storage' for a registered SOP class, else the UID itself."""
    name = UID(uid).name if uid else ""
    return name or uid


def _keyword(tag: str) -> str:
    if tag == "private":
        return "every private attribute"
    number = resolve_tag(tag)
    if number is None:
        return tag  # already a keyword (or unknown)
    return keyword_for_tag(number) or ("private" if (number >> 16) % 2 else "")


def report_data(agg: Aggregate, limits: Limits) -> dict[str, Any]:
    """The report as plain data: what report.json holds, and what the HTML and CSV show."""
    flagged, attributes = [], []
    for attribute in sorted(agg.review):
        values = agg.review[attribute]
        rows = [{"value": value, "objects": c.objects, "flagged_objects": c.flagged}
                for value, c in sorted(values.items(), key=lambda kv: (-kv[1].objects, kv[0]))]
        flagged += [{"attribute": attribute, **row} for row in rows if row["flagged_objects"]]
        attributes.append({"attribute": attribute, "distinct_listed": len(rows),
                           "unlisted_occurrences": agg.review_unlisted.get(attribute, 0), "values": rows})
    flagged.sort(key=lambda row: (-row["flagged_objects"], row["attribute"], row["value"]))
    replaced = [{"attribute": attribute, "replaced": count, "objects": agg.replaced_objects[attribute]}
                for attribute, count in sorted(agg.text_replaced.items(), key=lambda kv: (-kv[1], kv[0]))]
    dangling = [{"study_uid": study, "count": count,
                 "references": [{**ref, "element": readable_path(ref.get("path", ""))}
                                for ref in agg.dangling.get(study, [])]}
                for study, count in sorted(agg.dangling_counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "deid_version": __version__,
        "totals": {
            "audit_files": agg.files, "lines": agg.lines, "unreadable_lines": agg.bad_lines,
            "objects_released": agg.objects, "annotation_files": agg.annotations,
            "patients": len(agg.patients), "studies": len(agg.studies),
            "series": len(agg.series), "objects_past_entity_cap": agg.entities_untracked,
            "quarantined": agg.outcomes.get("quarantined", 0),
            "flagged_values": len(flagged), "flagged_objects": agg.flagged_objects,
            "flagged_by_other_objects": agg.cross_flagged_objects,
            "identity_values_replaced": sum(agg.text_replaced.values()),
            "references_checked": agg.references_checked,
            "dangling_references": sum(agg.dangling_counts.values()),
        },
        "outcomes": dict(agg.outcomes.most_common()),
        "counts_explained": counts_explained(agg),
        "runs": [{**run, "outcomes": dict(run["outcomes"])} for run in
                 sorted(agg.runs.values(), key=lambda run: (run["first"], run["run_id"]))],
        "modalities": dict(agg.modalities.most_common()),
        "sop_classes": [{"uid": uid, "name": sop_class_name(uid), "objects": n}
                        for uid, n in agg.sop_classes.most_common()],
        "quarantine": [{"code": code, "count": n, "meaning": describe(code)[0], "action": describe(code)[1]}
                       for code, n in agg.reasons.most_common()],
        "actions": dict(agg.actions.most_common()),
        "attributes": [{"tag": tag, "keyword": _keyword(tag), "action": action, "objects": n}
                       for (tag, action), n in sorted(agg.attributes.items())],
        "attributes_past_cap": agg.attributes_untracked,
        "patients": [{"patient_id": pid, "studies": v[0], "series": v[1], "objects": v[2]}
                     for pid, v in sorted(agg.patients.items())],
        "studies": [{"study_uid": uid, "patient_id": v[0], "series": v[1], "objects": v[2],
                     "modalities": " ".join(sorted(v[3]))} for uid, v in sorted(agg.studies.items())],
        "series": [{"series_uid": uid, "study_uid": v[0], "modality": v[1], "sop_class": sop_class_name(v[2]),
                    "objects": v[3]} for uid, v in sorted(agg.series.items())],
        "review": {"flagged": flagged, "attributes": attributes, "replaced": replaced,
                   "other_objects_checked": agg.tokens_checked},
        "dangling": dangling,
        "pixels": pixels_data(agg),
        "limits": vars(limits),
    }


def pixels_data(agg: Aggregate) -> dict[str, Any]:
    """Burned-in text: totals, and the objects listed (those with text kept for review first)."""
    listed = sorted(agg.pixels, key=lambda row: (-row["words_kept"], -row["regions"], row["sop_uid"]))
    return {"objects": agg.pixel_totals.get("objects", 0), "regions": agg.pixel_totals.get("regions", 0),
            "read": agg.pixel_totals.get("read", 0), "kept_objects": agg.pixel_totals.get("kept_objects", 0),
            "listed": listed}


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def counts_explained(agg: Aggregate) -> str:
    """How the command's figures (``deid run``'s "N written, N skipped, N quarantined", summed over
    the runs of these records) become the report's: each DICOM object is counted once, side-car
    annotation files apart, e.g. "90 written by the command: 89 DICOM objects and 1 annotation file"."""
    said = {word: agg.outcomes.get(word, 0) for word in ("written", "forwarded", "skipped", "quarantined")}
    figures = [f"{said['written']:,} written"] + [f"{n:,} {word}" for word, n in said.items()
                                                  if n and word not in ("written", "quarantined")]
    runs = agg.runs_untracked + sum(1 for run in agg.runs.values()
                                    if any(run["outcomes"].get(word) for word in said))
    by = "by the command" if runs <= 1 else f"by the command over {runs:,} runs"
    released = [_plural(agg.objects, "DICOM object")]
    if agg.annotations:
        released.append(_plural(agg.annotations, "annotation file"))
    text = f"{', '.join(figures)} {by}: {' and '.join(released)}"
    repeats = said["written"] + said["forwarded"] + said["skipped"] - agg.objects - agg.annotations
    if repeats > 0:
        text += (f", each counted once ({repeats:,} outcomes were for one already counted: a re-run's skip "
                 "of what an earlier run wrote, or a forward after the write)")
    text += "."
    if said["quarantined"]:
        text += f" {said['quarantined']:,} quarantined: not released, see Quarantine reasons."
    return text


def csv_tables(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each CSV file's rows."""
    counts = [{"table": "totals", "key": k, "count": v} for k, v in data["totals"].items()]
    counts += [{"table": "outcome", "key": k, "count": v} for k, v in data["outcomes"].items()]
    counts += [{"table": "modality", "key": k, "count": v} for k, v in data["modalities"].items()]
    counts += [{"table": "sop_class", "key": row["uid"], "count": row["objects"]} for row in data["sop_classes"]]
    counts += [{"table": "quarantine_reason", "key": row["code"], "count": row["count"]}
               for row in data["quarantine"]]
    counts += [{"table": "action", "key": k, "count": v} for k, v in data["actions"].items()]
    review = [{"flagged": "yes" if row["flagged_objects"] else "", "attribute": attr["attribute"],
               "value": row["value"], "objects": row["objects"], "flagged_objects": row["flagged_objects"]}
              for attr in data["review"]["attributes"] for row in attr["values"]]
    review.sort(key=lambda row: (row["flagged"] != "yes", row["attribute"], -row["objects"]))
    runs = [{k: v for k, v in run.items() if k != "outcomes"}
            | {f"outcome_{k}": v for k, v in run["outcomes"].items()} for run in data["runs"]]
    return {
        "counts": counts, "quarantine": data["quarantine"], "attributes": data["attributes"],
        "review": review, "replaced": data["review"]["replaced"],
        "pixels": [{k: v for k, v in row.items() if "thumbnails" not in k} for row in data["pixels"]["listed"]], "dangling": [ref for study in data["dangling"] for ref in study["references"]],
        "patients": data["patients"], "studies": data["studies"], "series": data["series"], "runs": runs,
    }


def _csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    writer = csv.DictWriter(buffer, fieldnames=fields or ["empty"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
    return buffer.getvalue().encode("utf-8")


def write_report(records: Path | str, out: Path | str, limits: Limits | None = None,
                 key: Any = None) -> Path:
    """Write report.html, report.json and the CSV tables of a records folder into ``out``;
    returns the HTML file's path.  With the key, kept text naming an identity seen in another
    object of the same patient or study (tokens of the encrypted map) is flagged too."""
    from deid.audit.html import render_html

    records, out = Path(records), Path(out)
    if not records.is_dir():
        raise UsageError(f"{records}: no such records folder")
    if not audit_files(records):
        raise UsageError(f"{records}: no audit records (audit/*.jsonl); is it the --records folder of a run?")
    limits = limits or Limits()
    tokens = None
    if key is not None:
        from deid.audit.reid import read_tokens

        tokens = read_tokens(records, key)
    data = report_data(aggregate(records, limits, tokens), limits)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_bytes_atomic((json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"),
                       out / JSON_NAME, mode=0o600)
    for name, rows in csv_tables(data).items():
        write_bytes_atomic(_csv_bytes(rows), out / f"{name}.csv", mode=0o600)
    html_path = out / HTML_NAME
    write_bytes_atomic(render_html(data).encode("utf-8"), html_path, mode=0o600)
    return html_path
