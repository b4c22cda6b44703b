"""Pseudonymous identity values: keyed hashes of IDs, and the patient's case number."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping

from deid.errors import ObjectError, UsageError
from deid.keys import SecretKey

_ID_COLUMNS = ("patient_id", "patientid", "original_patient_id", "id")
_CASE_COLUMNS = ("case_number", "casenumber", "case", "pseudonym", "case_no")


def load_lookup(path: Path) -> Mapping[str, str]:
    """Read a CSV of original patient ID -> case number (header names accepted: patient_id, case_number)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = {name.strip().lower().replace(" ", "_"): name for name in reader.fieldnames or []}
            id_col = next((fields[c] for c in _ID_COLUMNS if c in fields), None)
            case_col = next((fields[c] for c in _CASE_COLUMNS if c in fields), None)
            if id_col is None or case_col is None:
                raise UsageError(f"{path}: lookup CSV needs the columns patient_id and case_number")
            table: dict[str, str] = {}
            for line, row in enumerate(reader, start=2):
                pid, case = (row.get(id_col) or "").strip(), (row.get(case_col) or "").strip()
                if not pid or not case:
                    raise UsageError(f"{path}: line {line}: an empty patient_id or case_number")
                if len(case) > 64 or "\\" in case or "^" in case or "=" in case:
                    raise UsageError(f"{path}: line {line}: case_number must be at most 64 plain characters")
                if table.get(pid, case) != case:
                    raise UsageError(f"{path}: line {line}: the same patient has two case numbers")
                table[pid] = case
    except OSError:
        raise UsageError(f"{path}: cannot read the lookup CSV") from None
    return table


class Identity:
    """Computes replacement identity values from the key (and the lookup table, when given)."""

    def __init__(self, key: SecretKey, *, lookup: Mapping[str, str] | None, case_digits: int) -> None:
        self._key = key
        self._lookup = lookup
        self._case_digits = case_digits

    def hashed(self, domain: str, value: str, length: int, upper: bool = False) -> str:
        """Keyed hex digest of one value in a domain, cut to ``length`` characters; '' stays ''."""
        if not value:
            return value
        text = self._key.hexdigest("id:" + domain, value)[:length]
        return text.upper() if upper else text

    def case_number(self, patient_id: str) -> str:
        """The patient's case number: from the lookup table, else derived from the key."""
        if self._lookup is not None:
            case = self._lookup.get(patient_id)
            if case is None:
                raise ObjectError(
                    "patient-not-in-lookup",
                    "the object's Patient ID is not in the --lookup CSV; add the patient or remove the object",
                    stage="rules",
                    path="(0010,0020)",
                )
            return case
        digest = self._key.digest("case-number", patient_id)
        number = int.from_bytes(digest[:8], "big") % (10 ** self._case_digits)
        return str(number).zfill(self._case_digits)


class Originals(Mapping[str, str]):
    """Original identity values of one released object, kept only for the encrypted
    re-identification map.  It hides its values from ``repr``/``str`` (so a log call, an
    f-string or ``json.dumps(..., default=str)`` shows none) and is not a ``dict`` (so
    ``json.dumps`` refuses it)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<original identity values: {len(self._values)} hidden>"

    __str__ = __repr__

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Originals, (self._values,))
