"""CSV cells a spreadsheet will not run as formulas: shared by the report's CSV tables and the
released side-car CSV/TSV files (values in both are untrusted text)."""

from __future__ import annotations

import re
from typing import Any

#: A cell starting with one of these is a formula (or starts one) in Excel, LibreOffice and Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula (it
    starts with ``=``, ``+``, ``-``, ``@``, tab or CR); a plain number such as ``-12.5`` or
    ``+3e2`` is not a formula and stays as it is, and so does anything that is not text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return value if _PLAIN_NUMBER.fullmatch(value) else "'" + value
    return value
