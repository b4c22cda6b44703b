"""Resolve the attribute names a profile may use: a keyword, or a tag as '(gggg,eeee)' / 'ggggeeee'."""

from __future__ import annotations

import re
from functools import cache

from pydicom.datadict import keyword_for_tag, tag_for_keyword

_TAG_RE = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?$")


@cache
def _standard_keywords() -> dict[str, int]:
    """Keywords known to the PS3.15 table but newer than pydicom's dictionary."""
    from deid.standard import confidentiality_rows

    return {row.keyword: row.tag for row in confidentiality_rows() if row.keyword and row.tag is not None}


def resolve_tag(name: str) -> int | None:
    """The tag for a keyword or tag string, or None when it is neither."""
    match = _TAG_RE.match(name.strip())
    if match:
        return int(match.group(1) + match.group(2), 16)
    tag = tag_for_keyword(name)
    if tag is not None:
        return tag
    return _standard_keywords().get(name)


def tag_name(tag: int) -> str:
    """'(0010,0020) PatientID' style label; keyword left out when unknown."""
    keyword = keyword_for_tag(tag) or {v: k for k, v in _standard_keywords().items()}.get(tag, "")
    return f"{format_tag(tag)} {keyword}".rstrip()


def format_tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
