"""Value Representation facts: length limits, dummy values, and whether a value fits."""

from __future__ import annotations

import re
from functools import lru_cache

from pydicom.datadict import dictionary_has_tag, dictionary_VR, get_entry

# Maximum characters of one value (PS3.5 Table 6.2-1). PN: per component group.
MAX_CHARS: dict[str, int] = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "LT": 10240,
    "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64,
}
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                        "TM", "UC", "UI", "UR", "UT"})
TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
HASHABLE_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
DATE_VRS = frozenset({"DA", "DT"})
NUMERIC_BINARY_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})

DUMMY: dict[str, object] = {
    "AE": "DEID", "AS": "000Y", "CS": "DEIDENTIFIED", "DA": "19000101", "DS": "0",
    "DT": "19000101000000", "IS": "0", "LO": "DEIDENTIFIED", "LT": "DEIDENTIFIED",
    "PN": "DEIDENTIFIED", "SH": "DEIDENTIFIED", "ST": "DEIDENTIFIED", "TM": "000000",
    "UC": "DEIDENTIFIED", "UT": "DEIDENTIFIED", "UR": "", "US": 0, "SS": 0, "UL": 0, "SL": 0,
    "FL": 0.0, "FD": 0.0, "UV": 0, "SV": 0, "OB": b"\x00\x00", "OW": b"\x00\x00", "UN": b"\x00\x00",
    "OD": b"\x00" * 8, "OF": b"\x00" * 4, "OL": b"\x00" * 4, "OV": b"\x00" * 8, "AT": 0,
}

_CS_RE = re.compile(r"^[A-Z0-9 _]*$")
_UI_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_UID_FORM = re.compile(r"[0-9]+(\.[0-9]+)*")  # (leading zeros let by)
_DA_RE = re.compile(r"^\d{8}$")


@lru_cache(maxsize=1 << 16)  # (bounded: the tags are the input's, any a hostile file holds)
def vr_of(tag: int) -> str:
    """The data dictionary's VR for a tag ('UN' when unknown; the first of an ambiguous VR)."""
    if tag >> 16 & 1:
        return "UN"
    if tag & 0xFFFF == 0:
        return "UL"
    if not dictionary_has_tag(tag):
        masked = tag & 0xFF00FFFF
        if (tag >> 16) & 0xFF00 in (0x5000, 0x6000) and dictionary_has_tag(masked):
            tag = masked
        else:
            return "UN"
    vr = dictionary_VR(tag)
    return vr.split(" or ")[0] if " or " in vr else vr


def max_chars(vr: str) -> int | None:
    return MAX_CHARS.get(vr)


def fits(vr: str, value: str) -> bool:
    """Whether one string value is valid for the VR (length, and form for CS/UI/DA)."""
    limit = MAX_CHARS.get(vr)
    if vr == "PN":
        return all(len(group) <= 64 for group in value.split("="))
    if limit is not None and len(value) > limit:
        return False
    if vr == "CS":
        return bool(_CS_RE.match(value))
    if vr == "UI":
        return value == "" or bool(_UI_RE.match(value))
    if vr == "DA":
        return value == "" or bool(_DA_RE.match(value))
    if vr in ("LO", "SH", "CS", "PN", "AE") and "\\" in value:
        return False
    return True


#: VRs by the kind of value they hold: an element's VR of another kind than its attribute's is
#: no writer's slip (LO for SH, SS for US, OB for OW are), but a damaged tag
_VR_KINDS = {
    **dict.fromkeys(("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "SH", "ST", "TM", "UC",
                     "UR", "UT"), "text"),
    **dict.fromkeys(("AT", "FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"), "number"),
    **dict.fromkeys(("OB", "OD", "OF", "OL", "OV", "OW"), "bytes"),
    "PN": "name", "UI": "uid", "SQ": "sequence",
}


@lru_cache(maxsize=1 << 16)  # (bounded: the tags and VRs are the input's, any a hostile file holds)
def another_kind_of_value(tag: int, vr: str) -> bool:
    """Whether an element's (explicit) VR holds another kind of value than its public attribute's
    (a name under a UID's tag, text under a number's: a damaged tag moved it there)."""
    kind = _VR_KINDS.get(vr)
    if kind is None or (tag >> 16) & 1:  # (no VR, UN)
        return False
    known = _attribute_vrs(tag)
    if known is None:
        return False
    kinds = {_VR_KINDS.get(v) for v in known}
    return None not in kinds and kind not in kinds


@lru_cache(maxsize=1 << 12)  # (bounded: the tags are the input's, any a hostile file holds)
def _attribute_vrs(tag: int) -> tuple[str, ...] | None:
    """The VRs the data dictionary gives a public tag ("US or SS": both); None when unknown."""
    try:
        return tuple(get_entry(tag)[0].split(" or "))
    except KeyError:
        return None


@lru_cache(maxsize=1 << 12)  # (bounded: the tags are the input's, any a hostile file holds)
def another_vr_than_its_attributes(tag: int, vr: str) -> bool:
    """Whether a public element's (explicit) VR is none of its attribute's, though of the same
    kind (an LT under Ethnic Group's SH: a damaged tag may have moved another attribute's text
    there, or a writer chose its own VR)."""
    if not vr or vr == "UN" or (tag >> 16) & 1:
        return False
    known = _attribute_vrs(tag)
    return known is not None and vr not in known


@lru_cache(maxsize=1024)  # (bounded: the value is the input's, any string a hostile file holds)
def has_uid_form(value: str) -> bool:
    """Whether an input's value reads as a UID: numbers joined by dots, at most 64 characters.
    Laxer than :func:`fits` for UI (which a value deid makes must meet): leading zeros are let
    by, as some vendors' UIDs have them."""
    return len(value) <= 64 and _UID_FORM.fullmatch(value) is not None


def has_class_uid_form(value: str) -> bool:
    """Whether an input's SOP Class UID reads as a registered UID: of :func:`has_uid_form`, with
    two arcs or more and a first arc of 0, 1 or 2 (an ISO object identifier, PS3.5 9.1), as every
    class the standard or a vendor defines has.  A bare number (an accession number or a study ID
    under a damaged tag) names no class."""
    return has_uid_form(value) and "." in value and value[0] in "012" and value[1] == "."
