"""The HTML page of a report: one self-contained file (inline CSS and SVG, no script, nothing fetched).

Every value shown is escaped; control, format and bidirectional characters are shown as ``\\uXXXX``,
so a kept value cannot hide or reorder text in front of the person reviewing it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from html import escape
from typing import Any

from deid.audit.charts import bar_chart

#: A run's figures, as its command said; forwarded only shown when a node forwarded.
RUN_FIGURES = ("written", "forwarded", "skipped", "quarantined")
ALWAYS_SHOWN = ("written", "skipped", "quarantined")
TABLE_ROWS = 500  # rows shown per long table; the CSV files hold all of them
OUTCOME_COLOURS = {"written": "#4f9f6f", "forwarded": "#2f6f9f", "skipped": "#7f7f7f",
                   "quarantined": "#c0392b", "retrying": "#c98a2b"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1f3b57;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:8px 28px 40px;max-width:1280px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px 18px;margin:16px 0;overflow-x:auto}
h2{font-size:18px;margin:0 0 10px}h3{font-size:15px;margin:14px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #dde1e6;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card.alert{border-color:#c0392b;background:#fdecea}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border-bottom:1px solid #e6e9ed;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.v{white-space:pre-wrap;overflow-wrap:break-word;font-family:ui-monospace,Menlo,Consolas,monospace}
td.code,.tag{font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:normal;word-break:normal}
tr.flagged td{background:#fdecea}
.chart text{font-size:12px;fill:#1d232a}.chart .empty{fill:#7f7f7f}.charts{display:flex;flex-wrap:wrap;gap:18px}figure{margin:0}figcaption{font-weight:600;margin:4px 0}
img.thumb{max-width:240px;margin:2px 4px 2px 0;border:1px solid #dde1e6;vertical-align:top}
.note{color:#5b6670}.ok{color:#2d7a46}.bad{color:#c0392b;font-weight:600}nav a{margin-right:12px;color:#1f3b57}
"""


def shown(value: Any) -> str:
    """An untrusted value, escaped for HTML, with invisible and reordering characters made visible."""
    text = "" if value is None else str(value)
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\n\t" or not category.startswith("C"):
            out.append(char)
        else:  # Cc control, Cf format (bidi overrides, zero-width), Co/Cn/Cs
            out.append(f"\\u{ord(char):04x}")
    return escape("".join(out), quote=True)


#: Columns holding UIDs, codes, times, hashes and element paths: shown with break points after
#: their separators (and every CHUNK digits of a long hexadecimal run), never inside a word.
CODE_COLUMNS = frozenset({"run_id", "first", "last", "profile_sha256", "uid", "code", "sop_uid",
                          "path", "element", "tag", "keyword", "patient_id", "study_uid",
                          "series_uid", "attribute"})
CHUNK = 16
_SEPARATORS = frozenset("./-_:,>")
_HEX = frozenset("0123456789abcdefABCDEF")


def breakable(value: Any) -> str:
    """An identifier shown with ``<wbr>`` after each separator (``.``, ``-``, ``_``, ``:``, ``,``,
    ``/``, ``>``) and every CHUNK digits of a long hexadecimal run (hashes, released IDs), so a long
    UID or code wraps at its separators; a keyword such as ReferencedSOPInstanceUID stays whole."""
    parts, run = [], 0
    for char in "" if value is None else str(value):
        parts.append(shown(char))
        run = run + 1 if char in _HEX else 0
        if char in _SEPARATORS or run >= CHUNK:
            parts.append("<wbr>")
            run = 0
    return "".join(parts)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else shown(value)


def table(columns: Iterable[tuple[str, str]], rows: list[dict[str, Any]], *, limit: int = TABLE_ROWS,
          row_class: Any = None, empty: str = "none", csv_name: str = "") -> str:
    """A table of ``rows`` with (key, heading) columns; numbers right-aligned, values escaped."""
    columns = list(columns)
    if not rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
    body = []
    for row in rows[:limit]:
        cls = row_class(row) if row_class else ""
        cells = "".join(_cell(key, row.get(key)) for key, _ in columns)
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    more = ""
    if len(rows) > limit:
        more = f'<p class="note">{len(rows) - limit:,} more rows in {escape(csv_name or "the CSV files")}.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _cell(key: str, value: Any) -> str:
    if isinstance(value, int):
        return f'<td class="n">{_number(value)}</td>'
    if key in CODE_COLUMNS:
        return f'<td class="code">{breakable(value)}</td>'
    return f'<td class="v">{shown(value)}</td>'


def _cards(totals: dict[str, Any]) -> str:
    cards = [("DICOM objects released", "objects_released", False)]
    if totals.get("annotation_files"):
        cards.append(("Annotation files released", "annotation_files", False))
    cards += [("Patients", "patients", False),
             ("Studies", "studies", False), ("Series", "series", False),
             ("Quarantined", "quarantined", True), ("Flagged values", "flagged_values", True),
             ("Identity values replaced in text", "identity_values_replaced", False),
             ("Dangling references", "dangling_references", True), ("Audit lines", "lines", False)]
    html = []
    for title, key, alert in cards:
        value = totals.get(key, 0)
        cls = "card alert" if alert and value else "card"
        html.append(f'<div class="{cls}" id="card-{key}"><b>{_number(value)}</b>{escape(title)}</div>')
    return f'<div class="cards">{"".join(html)}</div>'


def _review(review: dict[str, Any]) -> str:
    flagged = review["flagged"]
    checked = ("an identity token of their own object or (the report was made with the key) of another "
               "object of the same patient or study" if review.get("other_objects_checked") else
               "an identity token of their own object (make the report with --key-file to also check "
               "identities seen in other objects of the same patient or study)")
    parts = ['<section id="review"><h2>Review: kept free text</h2>',
             ('<p class="note">Every distinct value of every kept free-text attribute, with the number of '
              f"released objects that carry it. Values that contain {checked} "
              "are flagged and listed first: read them before the release leaves.</p>")]
    replaced = review.get("replaced") or []
    if replaced:
        parts.append(f'<h3 id="replaced">Identity values replaced in kept text '
                     f'({sum(row["replaced"] for row in replaced):,})</h3>')
        parts.append('<p class="note">Names, IDs, dates, institutions and deny-list entries found in kept '
                     "free text and replaced by the profile's placeholder before release (counts only; the "
                     "released values are listed below).</p>")
        parts.append(table([("attribute", "Attribute"), ("replaced", "Replaced"), ("objects", "Objects")],
                           replaced, csv_name="replaced.csv"))
    if flagged:
        parts.append(f'<h3 class="bad">Flagged values ({len(flagged):,})</h3>')
        parts.append(table([("attribute", "Attribute"), ("value", "Value"), ("objects", "Objects"),
                            ("flagged_objects", "Flagged in")], flagged, row_class=lambda _: "flagged",
                           csv_name="review.csv"))
    else:
        parts.append('<p class="ok">No kept value contains an identity token of its object.</p>')
    parts.append('<table id="review-table"><thead><tr><th>Attribute</th><th>Value</th><th>Objects</th>'
                 "</tr></thead><tbody>")
    shown_rows = 0
    notes = []
    for attribute in review["attributes"]:
        for row in attribute["values"]:
            if shown_rows >= TABLE_ROWS * 4:
                break
            shown_rows += 1
            cls = ' class="flagged"' if row["flagged_objects"] else ""
            parts.append(f'<tr{cls}><td class="code">{breakable(attribute["attribute"])}</td>'
                         f'<td class="v">{shown(row["value"])}</td><td class="n">{row["objects"]:,}</td></tr>')
        if attribute["unlisted_occurrences"]:
            notes.append(f"{shown(attribute['attribute'])}: {attribute['unlisted_occurrences']:,} occurrences "
                         "of values past the list limit (counted, not listed)")
    parts.append("</tbody></table>")
    total_rows = sum(len(a["values"]) for a in review["attributes"])
    if total_rows > shown_rows:
        notes.append(f"{total_rows - shown_rows:,} more values in review.csv")
    parts += [f'<p class="note">{note}.</p>' for note in notes]
    parts.append("</section>")
    return "".join(parts)


def _dangling(dangling: list[dict[str, Any]], total: int) -> str:
    parts = ['<section id="dangling"><h2>Dangling references</h2>',
             ('<p class="note">References of released objects (RT Structure Sets, segmentations, SR, source '
              "images) to objects that were not released, per study.</p>")]
    if not dangling:
        parts.append('<p class="ok">Every reference to an instance points at a released object.</p>')
    for study in dangling:
        parts.append(f'<h3>Study <span class="tag">{breakable(study["study_uid"])}</span>: '
                     f'{study["count"]:,} dangling</h3>')
        parts.append(table([("sop_uid", "Referencing object"), ("modality", "Modality"), ("element", "Element path"),
                            ("uid", "Referenced UID"), ("problem", "Problem")], study["references"],
                           csv_name="dangling.csv"))
    if total > sum(len(s["references"]) for s in dangling):
        parts.append('<p class="note">More dangling references were counted than listed.</p>')
    parts.append("</section>")
    return "".join(parts)


_PNG_URI = re.compile(r"^data:image/png;base64,[A-Za-z0-9+/]+={0,2}$")


def _thumbnails(uris: list[str], label: str) -> str:
    """The thumbnails as images: only PNG data URIs are shown (a line is not trusted to hold them)."""
    return "".join(f'<img class="thumb" alt="{label}" src="{uri}">' for uri in uris if _PNG_URI.match(uri))


def _pixels(pixels: dict[str, Any]) -> str:
    """Burned-in text: per object, the blanked regions' surroundings after blanking, and the
    objects where text was found and kept (listed first, for a person's review)."""
    parts = ['<section id="pixels"><h2>Burned-in text</h2>']
    if not pixels.get("objects"):
        parts.append('<p class="note">No object had its pixels blanked or read for burned-in text.</p></section>')
        return "".join(parts)
    parts.append(f'<p class="note">{pixels["objects"]:,} objects had burned-in text blanked or read '
                 f'({pixels["read"]:,} read by OCR); {pixels["regions"]:,} regions blanked. The pictures '
                 "show each blanked region's surroundings after blanking (the text is gone); where OCR "
                 "found text that the profile keeps, the pictures show it as it was released.</p>")
    if pixels.get("kept_objects"):
        parts.append(f'<h3 class="bad">Text kept in the pixels: review these objects '
                     f'({pixels["kept_objects"]:,})</h3>')
    rows = []
    for row in pixels["listed"]:
        cls = ' class="flagged"' if row["words_kept"] else ""
        rows.append(f'<tr{cls}><td class="code">{breakable(row["sop_uid"])}</td><td class="v">'
                    f'{shown(row["modality"])}</td><td class="n">{row["regions"]:,}</td>'
                    f'<td class="n">{row["words_kept"]:,}</td><td class="code">{breakable(row["transfer_syntax"])}'
                    f'</td><td>{_thumbnails(row["thumbnails"], "blanked region")}'
                    f'{_thumbnails(row["kept_thumbnails"], "text kept")}</td></tr>')
    parts.append('<table id="pixels-table"><thead><tr><th>Object (released SOP Instance UID)</th>'
                 "<th>Modality</th><th>Regions blanked</th><th>Words kept</th><th>Written as</th>"
                 f"<th>After blanking</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if pixels["objects"] > len(pixels["listed"]):
        parts.append(f'<p class="note">{pixels["objects"] - len(pixels["listed"]):,} more objects are '
                     "counted, not listed (pixels.csv lists the listed ones).</p>")
    parts.append("</section>")
    return "".join(parts)


def render_html(data: dict[str, Any]) -> str:
    """The whole page."""
    totals = data["totals"]
    outcome_chart = bar_chart("Outcomes", list(data["outcomes"].items()), colours=OUTCOME_COLOURS,
                              caption=False)
    modality_chart = bar_chart("Objects by modality", list(data["modalities"].items()))
    class_chart = bar_chart("Objects by SOP class", [(r["name"], r["objects"]) for r in data["sop_classes"]])
    reason_chart = bar_chart("Quarantine reasons", [(r["code"], r["count"]) for r in data["quarantine"]],
                             caption=False)
    action_chart = bar_chart("Actions applied", list(data["actions"].items()))
    # runs of deid run / serve (not reidentify's query lines), with the figures their command printed
    runs = [{**run, **{word: run["outcomes"].get(word, 0) for word in RUN_FIGURES}}
            for run in data["runs"] if any(run["outcomes"].get(word) for word in RUN_FIGURES)]
    figures = [(word, word.capitalize()) for word in RUN_FIGURES
               if word in ALWAYS_SHOWN or any(run[word] for run in runs)]
    if any(run.get("annotations") for run in runs):
        figures.append(("annotations", "Annotation files"))
    unreadable = ""
    if totals["unreadable_lines"]:
        unreadable = (f'<p class="bad">{totals["unreadable_lines"]:,} audit lines could not be read '
                      "(e.g. cut by a crash) and are not counted.</p>")
    nav = "".join(f'<a href="#{anchor}">{title}</a>' for anchor, title in (
        ("outcomes", "Outcomes"), ("objects", "Objects"), ("quarantine", "Quarantine"), ("review", "Review"), ("pixels", "Burned-in text"),
        ("dangling", "Dangling references"), ("profile", "Profile actions"), ("entities", "Patients and studies")))
    explained = shown(data.get("counts_explained", ""))
    summary = (f'<section id="summary"><h2>Summary</h2>{_cards(totals)}'
               f'<p class="note" id="counts-explained">{explained}</p>{unreadable}</section>')
    sections = [
        summary,
        '<section id="outcomes"><h2>Outcomes</h2>'
        f'<div class="charts">{outcome_chart}</div>'
        '<p class="note">Per run, the figures its command printed ("N written, N skipped, N quarantined")'
        + ("; annotation files are side-cars among the written" if figures[-1][0] == "annotations" else "")
        + ".</p>"
        + table([("run_id", "Run"), ("first", "First"), ("last", "Last"), ("profile", "Profile"), *figures,
                 ("profile_sha256", "Profile sha256")], runs, csv_name="runs.csv")
        + "</section>",
        f'<section id="objects"><h2>Released objects</h2><div class="charts">{modality_chart}{class_chart}</div>'
        + table([("name", "SOP class"), ("uid", "UID"), ("objects", "Objects")], data["sop_classes"])
        + "</section>",
        f'<section id="quarantine"><h2>Quarantine reasons</h2><div class="charts">{reason_chart}</div>'
        + table([("code", "Reason"), ("count", "Objects"), ("meaning", "What happened"), ("action", "What to do")],
                data["quarantine"], empty="Nothing was quarantined.")
        + "</section>",
        _review(data["review"]),
        _pixels(data.get("pixels") or {}),
        _dangling(data["dangling"], totals["dangling_references"]),
        f'<section id="profile"><h2>What the profile did</h2><div class="charts">{action_chart}</div>'
        '<p class="note">Per attribute at the top level of the released objects: the action applied and in '
        "how many objects.</p>"
        + table([("tag", "Tag"), ("keyword", "Attribute"), ("action", "Action"), ("objects", "Objects")],
                data["attributes"], csv_name="attributes.csv")
        + "</section>",
        '<section id="entities"><h2>Patients, studies and series</h2>'
        + table([("patient_id", "Patient ID (released)"), ("studies", "Studies"), ("series", "Series"),
                 ("objects", "Objects")], data["patients"], csv_name="patients.csv")
        + table([("study_uid", "Study UID (released)"), ("patient_id", "Patient ID"), ("modalities", "Modalities"),
                 ("series", "Series"), ("objects", "Objects")], data["studies"], csv_name="studies.csv")
        + table([("series_uid", "Series UID (released)"), ("study_uid", "Study UID"), ("modality", "Modality"),
                 ("sop_class", "SOP class"), ("objects", "Objects")], data["series"], csv_name="series.csv")
        + "</section>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>deid release report</title><style>{CSS}</style></head><body>"
        f"<header><h1>deid release report</h1><p>Generated {shown(data['generated'])} by deid "
        f"{shown(data['deid_version'])} from {totals['lines']:,} audit lines in {totals['audit_files']:,} files. "
        "Released values only; the kept text is what went out.</p></header>"
        f"<main><nav>{nav}</nav>{''.join(sections)}</main></body></html>\n"
    )
