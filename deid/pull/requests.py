"""The approved list: accession numbers or patient IDs, from a CSV with a header row
(``accession_number`` / ``patient_id``) or a plain list, one value per line.

Each entry is named outside the records folder only by its reference: a keyed digest of the
value (:func:`reference`), never the value itself.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from deid.errors import UsageError
from deid.keys import SecretKey

ACCESSION, PATIENT = "accession_number", "patient_id"
KINDS = (ACCESSION, PATIENT)
REFERENCE_DOMAIN = "pull-request"
REFERENCE_LENGTH = 16  # hex digits of the keyed digest: 64 bits, enough to tell a list apart
MAX_VALUE = 64  # longest accession number (SH: 16) or patient ID (LO: 64)


@dataclass(frozen=True)
class Request:
    """One approved entry: what it is (``kind``), its value (PHI: records folder only) and its
    reference (a keyed digest, safe for logs, the terminal and the report)."""

    kind: str
    value: str = ""
    ref: str = ""

    def __repr__(self) -> str:  # the value never reaches a traceback or a log by repr
        return f"Request(kind={self.kind!r}, ref={self.ref!r})"


def reference(key: SecretKey, kind: str, value: str) -> str:
    """The request's name outside the records folder: ``A-`` or ``P-`` and 16 hex digits of
    HMAC-SHA256 under the pull's key (the same list and key, the same references)."""
    prefix = "A-" if kind == ACCESSION else "P-"
    return prefix + key.hexdigest(REFERENCE_DOMAIN, f"{kind}\x00{value}")[:REFERENCE_LENGTH]


def read_requests(path: Path, kind: str, key: SecretKey) -> list[Request]:
    """The entries of ``path`` in file order, blanks and repeats dropped.  A first row that is
    exactly the header (``accession_number`` or ``patient_id``, in any column of a CSV) selects
    that column; otherwise every line is one value.  Errors name the line, never its value."""
    flag = "--accessions" if kind == ACCESSION else "--patients"
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise UsageError(f"{flag}: {path}: cannot be read ({exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{flag}: {path}: not UTF-8 text") from None
    values = _values(text, kind, flag, path)
    if not values:
        raise UsageError(f"{flag}: {path}: no {kind.replace('_', ' ')} in the file")
    return [Request(kind, value, reference(key, kind, value)) for value in values]


def _values(text: str, kind: str, flag: str, path: Path) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    other = PATIENT if kind == ACCESSION else ACCESSION
    if other in header and kind not in header:
        raise UsageError(f"{flag}: {path}: the header names {other}, not {kind} "
                         f"(use {'--patients' if kind == ACCESSION else '--accessions'})")
    if kind in header:
        column = header.index(kind)
        cells = [(n, row[column] if column < len(row) else "") for n, row in enumerate(rows[1:], 2)]
    else:  # a plain list: the whole line is the value (it may hold a comma)
        cells = list(enumerate(text.splitlines(), 1))
    seen: dict[str, None] = {}
    for number, cell in cells:
        value = cell.strip()
        if not value or value.startswith("#"):
            continue
        if len(value) > MAX_VALUE or "\\" in value or any(ord(c) < 32 for c in value):
            raise UsageError(f"{flag}: {path}: line {number} is not a {kind.replace('_', ' ')} "
                             f"(at most {MAX_VALUE} characters, no backslash or control character)")
        seen.setdefault(value, None)
    return list(seen)
