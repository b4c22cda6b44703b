"""`deid explain`: the effective rule for every attribute a profile touches, for one SOP class."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import UID_dictionary

from deid import standard
from deid.engine.compiler import compile_rules
from deid.engine.content_items import CONTENT_SEQUENCE, CONTENT_VALUE_TAGS
from deid.engine.vr import vr_of
from deid.errors import UsageError
from deid.profile.model import Profile
from deid.profile.tags import format_tag, tag_name

CLASS_ROWS = (
    ("private", "(gggg,eeee) odd group", "every private attribute", 0x00110010, "LO"),
    ("overlays", "(60xx,eeee)", "every overlay group", 0x60003000, "OW"),
    ("curves", "(50xx,eeee)", "every curve group", 0x50003000, "OW"),
    ("instance_uids", "UI", "every instance UID not listed above", 0x0020000D, "UI"),
    ("dates", "DA, DT", "every date not listed above", 0x00080021, "DA"),
)


SAFE_PRIVATE_NOTE = "but the safe private attributes listed below"


@dataclass(frozen=True)
class ExplainRow:
    tag: str
    name: str
    vr: str
    action: str
    source: str
    note: str


def sop_class_uid(name: str) -> str:
    for uid, entry in UID_dictionary.items():
        if name in (uid, entry[4]) and entry[1] == "SOP Class":
            return uid
    raise UsageError(f"unknown SOP class {name!r}: use a keyword such as CTImageStorage or a UID")


def explain(profile: Profile, sop_class: str, *, only_profile: bool = False) -> list[ExplainRow]:
    uid = sop_class_uid(sop_class)
    rules = compile_rules(profile, uid)
    tags: set[int] = set(profile.tag_rules) | set(profile.sop_class_rules.get(uid, {}))
    if profile.standard_table and not only_profile:
        tags |= {row.tag for row in standard.confidentiality_rows() if row.tag is not None}
    if not only_profile:
        tags |= set(CONTENT_VALUE_TAGS)
    rows = []
    for tag in sorted(tags):
        vr = vr_of(tag)
        content_value = tag in CONTENT_VALUE_TAGS  # decided where it lives: inside a content item
        decision = rules.decide((CONTENT_SEQUENCE,) if content_value else (), tag, vr)
        if only_profile and decision.source.startswith(("ps3.15", "default")):
            continue
        name = tag_name(tag)[len(format_tag(tag)) + 1:]
        if content_value:
            name += f" ({CONTENT_VALUE_TAGS[tag]} item)"
        rows.append(ExplainRow(format_tag(tag), name, vr, decision.describe(), decision.source, decision.note))
    for class_name, tag_label, name, example, vr in CLASS_ROWS:
        rule = profile.class_rules.get(class_name)
        note = SAFE_PRIVATE_NOTE if class_name == "private" and rules.safe_private else ""
        if rule is not None:
            rows.append(ExplainRow(tag_label, name, vr if vr in ("UI", "DA") else "", rule.describe(), rule.source, note))
        elif profile.standard_table and not only_profile and class_name in ("private", "overlays", "curves"):
            rows.append(ExplainRow(tag_label, name, "", "remove", "ps3.15 (whole group)", note))
    return rows


def render(rows: list[ExplainRow], profile: Profile, sop_class: str, fmt: str = "text") -> str:
    uid = sop_class_uid(sop_class)
    iod = standard.iod_for_sop_class(uid) or "unknown IOD"
    head = (f"Profile {profile.name} (version {profile.version}, {' > '.join(profile.chain)}), "
            f"{UID_dictionary[uid][4]} ({iod}); precedence: SOP-class + tag > tag > class rule > base profile > keep")
    columns = ("tag", "attribute", "VR", "action", "from", "IOD adjustment")
    table = [columns] + [(r.tag, r.name, r.vr, r.action, r.source, r.note) for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table[1:]]
        return head + "\n\n" + "\n".join(lines) + "\n" + "".join("\n" + part for part in extras(profile, uid))
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    return head + "\n" + "\n".join(lines) + "\n" + "".join("\n" + part for part in extras(profile, uid))


def extras(profile: Profile, sop_class_uid: str) -> list[str]:
    """The profile's pseudonym labels, the pixel regions that can apply to this SOP class and, for an
    SR, the concept rules, as text."""
    parts = []
    if profile.labels:
        lines = ["Labels kept in pseudonyms (<label><separator><keyed value>, within the rule's length):"]
        for tag, label in sorted(profile.labels.items()):
            lines.append(f"  {tag_name(tag)}  {label.describe()}  ({label.source})")
        parts.append("\n".join(lines) + "\n")
    regions = [r for r in profile.pixel_regions
               if "sop_class" not in r.match or sop_class_uid in r.match["sop_class"]]
    if regions:
        lines = [("Pixel regions blanked (first match wins; then Burned In Annotation NO; boxes are "
                  "[x, y, width, height] in pixels from the top left, every frame):")]
        for region in regions:
            match = ", ".join(f"{key}={'|'.join(_sop_name(v) if key == 'sop_class' else v for v in values)}"
                              for key, values in region.match.items()) or "any object"
            boxes = " ".join(f"[{x}, {y}, {w}, {h}]" for x, y, w, h in region.boxes)
            lines.append(f"  {region.name}: when {match}: blank {boxes}  ({region.source})")
        parts.append("\n".join(lines) + "\n")
    elif sop_class_uid.startswith("1.2.840.10008.5.1.4.1.1.7"):
        parts.append("Pixel regions: none for this SOP class; a Secondary Capture without Burned In "
                     "Annotation NO is quarantined (burned-in-annotation-risk) unless the profile sets allow_burned_in\n")
    if profile.ocr is not None:
        parts.append(f"Burned-in text read by OCR (Tesseract) and blanked ({profile.ocr.blank}; words from "
                     f"confidence {profile.ocr.min_confidence:g}) in images that are "
                     f"{profile.ocr.describe_select()}; lossy compressed pixels: {profile.lossy_pixels}  "
                     f"({profile.ocr.source})\n")
    if is_structured(sop_class_uid):
        parts.append(structured_content(profile))
    if "retain_safe_private" in profile.options:
        parts.append(safe_private(profile))
    return parts


def safe_private(profile: Profile) -> str:
    """What the Retain Safe Private option keeps: Table E.3.10-1 and the profile's safe_private."""
    rows = standard.safe_private_rows()
    lines = [("Safe private attributes kept (Retain Safe Private, CID 7050 113111; matched by Private "
              "Creator, group and element byte in the block that creator reserved, never by group and "
              "element alone; the Private Creator is kept with them; an element whose VR differs "
              "from the listed one is not kept):"),
             (f"  PS3.15 Table E.3.10-1 ({standard.safe_private_edition()}): {len(rows)} attributes "
              f"of {len({row.creator for row in rows})} creators")]
    table = [(row.describe(), row.vr or "-", row.meaning or "-") for row in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(2)]
    lines += ["    " + "  ".join((cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), cells[2]))
              for cells in table]
    if profile.safe_private:
        lines.append("  The profile's own (safe_private):")
        lines += [f"    {rule.describe()}  ({rule.source})" for rule in profile.safe_private]
    return "\n".join(lines) + "\n"


def is_structured(sop_class_uid: str) -> bool:
    """An SR document (or a Key Object Selection): its content tree is cleaned by concept."""
    keyword = _sop_name(sop_class_uid)
    return keyword.endswith("SRStorage") or keyword in (
        "KeyObjectSelectionDocumentStorage", "ProcedureLogStorage", "MammographyCADSRStorage",
        "ChestCADSRStorage", "SpectaclePrescriptionReportStorage", "MacularGridThicknessAndVolumeReportStorage")


def structured_content(profile: Profile) -> str:
    """The profile's TEXT allow-list and concept rules (structured_content), as text."""
    keeps_text = not profile.standard_table or "clean_structured_content" in profile.options
    lines = [("SR content items (structured_content; a concept is code value + coding scheme of its "
              "Concept Name Code Sequence):")]
    if not keeps_text:
        lines.append("  TEXT kept: none (PS3.15 Content Sequence: D; the option clean_structured_content "
                     "is not ticked)")
    elif profile.kept_text:
        lines.append("  TEXT kept only for these concepts (then checked by the review of kept text):")
        lines += [f"    ({r.code}, {r.scheme}) {r.meaning}  ({r.source})"
                  for r in profile.kept_text.values()]
    else:
        lines.append("  TEXT kept: none (structured_content.keep_text is empty)")
    lines.append(f"  Other TEXT items: {profile.text_not_kept}; where measurements, coordinates or "
                 f"references sit beneath (or point at) one: its value becomes {profile.content_placeholder!r}")
    if profile.concept_rules:
        rules = list(profile.concept_rules.values())  # the base profile's order, then the profile's
        table = [("code", "scheme", "meaning", "action", "from")]
        table += [(r.code, r.scheme, r.meaning, r.describe(), r.source) for r in rules]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines.append("  Concept rules (whatever the item's value type; before the element rules):")
        lines += ["    " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
                  for row in table]
    return "\n".join(lines) + "\n"


def _sop_name(uid: str) -> str:
    return UID_dictionary[uid][4] if uid in UID_dictionary else uid
