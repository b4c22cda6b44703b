"""Element paths as a person reads them: ``ContentSequence[4] > ReferencedSOPSequence[0] >
ReferencedSOPInstanceUID`` for the audit's ``(0040,A730)[4].(0008,1199)[0].(0008,1155)``.

Private tags and tags no dictionary knows keep their ``(gggg,eeee)`` form (a private tag's meaning
depends on its creator, which the path does not carry).  A path of another shape (a side-car's
``$.field``, an empty path) is returned as it is.
"""

from __future__ import annotations

import re
from functools import cache

from pydicom.datadict import keyword_for_tag

SEPARATOR = " > "
_STEP = r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)((?:\[\d+\])?)"
_STEP_RE = re.compile(_STEP)
_PATH_RE = re.compile(rf"{_STEP}(?:\.{_STEP})*")


@cache
def tag_keyword(tag: int) -> str:
    """The keyword of a public tag (pydicom's dictionary, then the PS3.15 table's newer keywords);
    empty for a private or unknown tag."""
    if (tag >> 16) % 2:
        return ""
    keyword = keyword_for_tag(tag)
    if keyword:
        return keyword
    from deid.standard import confidentiality_rows

    for row in confidentiality_rows():
        if row.tag == tag and row.keyword:
            return row.keyword
    return ""


def readable_path(path: str) -> str:
    """``path`` (tags and item numbers, as audit lines and reasons hold them) with keywords."""
    if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
        return path
    steps = []
    for match in _STEP_RE.finditer(path):
        group, element, item = match.groups()
        keyword = tag_keyword(int(group + element, 16))
        steps.append((keyword or f"({group.upper()},{element.upper()})") + item)
    return SEPARATOR.join(steps)
