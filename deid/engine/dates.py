"""Date generalisation: keep the year; month and day become 01 01 (DA, and the date part of DT)."""

from __future__ import annotations

import re

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_ACR_NEMA = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")  # YYYY.MM.DD: ACR-NEMA 300, still in old archives
# YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]: the time and offset after the day are kept as they are
_DT = re.compile(r"^(\d{4})(\d{2}(\d{2}((?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(?:[+-]\d{4})?))?)?$")


class DateFormError(ValueError):
    """The value is not a date of its VR; the message carries no value."""


def generalise_da(value: str) -> str:
    """'20170415' -> '20170101'; a range 'A-B' part by part; '' stays ''; the old ACR-NEMA form
    '2017.04.15' -> '20170101' (the standard form)."""
    value = value.strip()
    if not value:
        return value
    if "-" in value:
        return "-".join(generalise_da(part) if part else part for part in value.split("-"))
    match = _DA.match(value) or _DA_ACR_NEMA.match(value)
    if not match:
        raise DateFormError("not a DA value (YYYYMMDD)")
    return match.group(1) + "0101"


def generalise_dt(value: str) -> str:
    """'20170415083000.000+0800' -> '20170101083000.000+0800'; 'YYYY' and 'YYYYMM' keep the year only."""
    value = value.strip()
    if not value:
        return value
    match = _DT.match(value)
    if not match:
        if value.count("-") == 1 and not value.startswith("-"):
            return "-".join(generalise_dt(part) if part else part for part in value.split("-"))
        raise DateFormError("not a DT value (YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    year, rest_after_year, _, rest_after_day = match.groups()
    if rest_after_year is None:
        return year
    if rest_after_day is None and len(rest_after_year) == 2:
        return year + "01"
    return year + "0101" + (rest_after_day or "")
