"""PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes) and E.1-1a.

Edition 2026d ("DICOM PS3.15 2026d, (c) NEMA"). Rows are matched by tag; names are as printed
in the table (footnote text included), so never match on names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

from deid.standard._data import E1_1_FILE, E1_1A_FILE, LazyMapping, load_json

EDITION = "2026d"
PS3_15_ACKNOWLEDGEMENT = "DICOM PS3.15 2026d, \u00a9 NEMA"

BASIC_PROFILE = "basic_profile"
#: The option columns of Table E.1-1, in the table's order (Basic Profile column excluded).
OPTION_COLUMNS: tuple[str, ...] = (
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_longitudinal_full_dates",
    "retain_longitudinal_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
)


@dataclass(frozen=True, slots=True)
class ConfidentialityRow:
    """One row of Table E.1-1.

    ``tag`` is the exact tag, or None for the wildcard rows ((50xx,xxxx), (60xx,3000),
    (60xx,4000)) and the private attributes row. ``match_value``/``match_mask`` give the
    32-bit test ``(tag & mask) == value`` (None for the private row). ``basic`` is the Basic
    Profile action exactly as printed ('X', 'Z', 'D', 'U', 'X/Z', 'X/Z/U*', ...); ``options``
    maps each option column to its code ('K', 'C') or None where the table's cell is empty.
    """

    tag: int | None
    match_value: int | None
    match_mask: int | None
    keyword: str | None
    name: str
    retired: bool
    in_std_comp_iod: bool
    basic: str
    options: Mapping[str, str | None] = field(hash=False)

    @property
    def is_private_row(self) -> bool:
        """True for the '(gggg,eeee) where gggg is odd' row."""
        return self.match_mask is None

    def matches(self, tag: int) -> bool:
        """Whether ``tag`` falls under this row.

        Wildcard rows match even groups only ((60xx,3000) does not cover the private group
        6001); the private row matches every odd group.
        """
        if self.match_mask is None:
            return bool((tag >> 16) & 1)
        if self.match_mask != 0xFFFFFFFF and (tag >> 16) & 1:
            return False
        return (tag & self.match_mask) == self.match_value

    def action(self, column: str) -> str | None:
        """The code in a column: ``'basic_profile'`` or one of :data:`OPTION_COLUMNS`."""
        if column == BASIC_PROFILE:
            return self.basic
        return self.options[column]


def _row(record: dict) -> ConfidentialityRow:
    match = record["match"]
    value = int(match["value"], 16) if match else None
    mask = int(match["mask"], 16) if match else None
    return ConfidentialityRow(
        tag=value if mask == 0xFFFFFFFF else None,
        match_value=value,
        match_mask=mask,
        keyword=record["keyword"],
        name=record["name"],
        retired=bool(record["retired"]),
        in_std_comp_iod=bool(record["in_std_comp_iod"]),
        basic=record[BASIC_PROFILE],
        options=MappingProxyType({column: record[column] for column in OPTION_COLUMNS}),
    )


@cache
def confidentiality_rows() -> tuple[ConfidentialityRow, ...]:
    """All 657 rows of Table E.1-1 (2026d), in the table's order."""
    data = load_json(E1_1_FILE)
    columns = tuple(column for column in data["columns"] if column != BASIC_PROFILE)
    if columns != OPTION_COLUMNS:  # pragma: no cover - guards a data update
        raise RuntimeError(f"{E1_1_FILE}: option columns {columns} != {OPTION_COLUMNS}")
    return tuple(_row(record) for record in data["attributes"])


@cache
def _index() -> tuple[
    dict[int, ConfidentialityRow], tuple[ConfidentialityRow, ...], ConfidentialityRow
]:
    exact: dict[int, ConfidentialityRow] = {}
    masked: list[ConfidentialityRow] = []
    private: ConfidentialityRow | None = None
    for row in confidentiality_rows():
        if row.tag is not None:
            exact[row.tag] = row
        elif row.match_mask is not None:
            masked.append(row)
        else:
            private = row
    if private is None:  # pragma: no cover - guards a data update
        raise RuntimeError(f"{E1_1_FILE}: no private attributes row")
    # most specific mask first: (60xx,3000)/(60xx,4000) before (50xx,xxxx)
    masked.sort(key=lambda row: -bin(row.match_mask or 0).count("1"))
    return exact, tuple(masked), private


def row_for_tag(tag: int) -> ConfidentialityRow | None:
    """The row of Table E.1-1 for a tag: the exact row, else a wildcard row (overlay (60xx,3000),
    (60xx,4000), curve (50xx,xxxx); even groups only), else None.

    Private (odd-group) tags give None: the caller applies :func:`private_row` itself (and its
    safe-private rules).
    """
    exact, masked, _private = _index()
    row = exact.get(tag)
    if row is not None:
        return row
    if (tag >> 16) & 1:
        return None
    for candidate in masked:
        if (tag & candidate.match_mask) == candidate.match_value:  # type: ignore[operator]
            return candidate
    return None


def private_row() -> ConfidentialityRow:
    """The '(gggg,eeee) where gggg is odd' row (Basic X, Retain Safe Private C)."""
    return _index()[2]


@cache
def action_codes() -> Mapping[str, str]:
    """Table E.1-1a: action code -> description (D, Z, X, K, C, U, Z/D, X/Z, X/D, X/Z/D, X/Z/U*)."""
    data = load_json(E1_1A_FILE)
    return MappingProxyType({item["code"]: item["description"] for item in data["codes"]})


#: Table E.1-1a as a read-only mapping (loaded on first use).
ACTION_CODES: Mapping[str, str] = LazyMapping(action_codes)
