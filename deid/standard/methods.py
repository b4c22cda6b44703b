"""PS3.16 CID 7050 "De-identification Method" codes (edition 2026d, "DICOM PS3.16 2026d, (c) NEMA").

Items of De-identification Method Code Sequence (0012,0064): Code Value (0008,0100) = ``value``,
Coding Scheme Designator (0008,0102) = ``scheme`` ('DCM'), Code Meaning (0008,0104) = ``meaning``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from deid.standard._data import CID_7050_FILE, load_json

PS3_16_ACKNOWLEDGEMENT = "DICOM PS3.16 2026d, \u00a9 NEMA"


@dataclass(frozen=True, slots=True)
class MethodCode:
    """A CID 7050 code; ``column`` is the Table E.1-1 column it names ('basic_profile',
    'retain_uids', ...) or None (113101 Clean Pixel Data, 113102 Clean Recognizable Visual
    Features have no column)."""

    value: str
    scheme: str
    meaning: str
    column: str | None


@cache
def method_codes() -> tuple[MethodCode, ...]:
    """The 13 codes of CID 7050 (113100-113112), in code order."""
    data = load_json(CID_7050_FILE)
    return tuple(
        MethodCode(
            value=item["code_value"],
            scheme=item["scheme_designator"],
            meaning=item["code_meaning"],
            column=item["e1_1_column"],
        )
        for item in data["codes"]
    )


@cache
def _by_key() -> Mapping[str, MethodCode]:
    index: dict[str, MethodCode] = {}
    for code in method_codes():
        index[code.value] = code
        if code.column:
            index[code.column] = code
    return MappingProxyType(index)


def method_code(column_or_value: str) -> MethodCode:
    """The CID 7050 code for a Table E.1-1 column key ('basic_profile', 'retain_device_identity',
    ...) or a code value ('113100'). Raises KeyError for anything else."""
    try:
        return _by_key()[column_or_value]
    except KeyError:
        raise KeyError(
            f"not a CID 7050 code value or Table E.1-1 column: {column_or_value!r}"
        ) from None
