"""PS3.15 Table E.3.10-1 "Safe Private Attributes" (edition 2026d, "DICOM PS3.15 2026d, (c) NEMA").

A private attribute is named by its Private Creator, its odd group and the low byte of its element
(``(0019,xx23)`` of ``GEMS_ACQU_01``): the high byte (``xx``) is the block the creator reserved in
that object, so it is never part of the name, and a group and element alone name nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from deid.standard._data import E3_10_1_FILE, load_json

_TAG = re.compile(r"^\(([0-9A-Fa-f]{4}),xx([0-9A-Fa-f]{2})\)$")


@dataclass(frozen=True, slots=True)
class SafePrivate:
    """One private attribute known to be safe: creator, group, element byte, and what the table
    says of it (VR, VM, meaning; empty where the table leaves them blank)."""

    creator: str
    group: int
    element: int
    vr: str = ""
    vm: str = ""
    meaning: str = ""

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.creator, self.group, self.element)

    def describe(self) -> str:
        """``(0019,xx23) GEMS_ACQU_01``."""
        return f"({self.group:04X},xx{self.element:02X}) {self.creator}"


def parse_private_tag(text: str) -> tuple[int, int]:
    """Group and element byte of ``(gggg,xxee)`` with gggg odd; ``ValueError`` otherwise."""
    match = _TAG.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a private tag written (gggg,xxee)")
    group, element = int(match.group(1), 16), int(match.group(2), 16)
    if group % 2 == 0 or group < 0x0009:
        raise ValueError(f"{text!r}: a private group is odd and at least 0009")
    return group, element


@cache
def safe_private_rows() -> tuple[SafePrivate, ...]:
    """Every row of Table E.3.10-1, in the table's order."""
    rows = []
    for row in load_json(E3_10_1_FILE)["rows"]:
        group, element = parse_private_tag(row["tag"])
        rows.append(SafePrivate(row["private_creator"], group, element, row["vr"], row["vm"],
                                row["meaning"]))
    return tuple(rows)


@cache
def safe_private_index() -> Mapping[tuple[str, int, int], SafePrivate]:
    """Table E.3.10-1 by (creator, group, element byte)."""
    return MappingProxyType({row.key: row for row in safe_private_rows()})


def safe_private_edition() -> str:
    """The edition of the packaged table ('2026d')."""
    return str(load_json(E3_10_1_FILE)["edition"])
