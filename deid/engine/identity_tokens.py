"""The identity values of one object, read before the rules change them, and finding them in text.

Tokens: person names (each component group, each component, each word of a component, and the
ideographic family + given name written together), patient IDs (also those of Other Patient IDs
Sequence), accession numbers, the birth date in the forms free text writes it, and the
institution. Matching is case-insensitive on whole words: a token is not found inside a longer
run of ASCII letters or digits (ideographic text has no word breaks, so it matches anywhere).
Name components of one letter (initials) are left out; other tokens need 3 characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

_NAME_KEYWORDS = (
    "PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "ReferringPhysicianName", "ConsultingPhysicianName", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "OperatorsName", "RequestingPhysician",
    "ResponsiblePerson",
)
_WHOLE_KEYWORDS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "AdmissionID", "InstitutionName")
_BIRTH_DATE = 0x00100030
_OTHER_IDS_SEQUENCE = 0x00101002
_PATIENT_ID = 0x00100020
MIN_NAME_PART = 2
MIN_TOKEN = 3
_WORD_SPLIT = re.compile(r"[\s\-,.'()/]+")


def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return tag


_NAME_TAGS = tuple(_tag(k) for k in _NAME_KEYWORDS)
_WHOLE_TAGS = tuple(_tag(k) for k in _WHOLE_KEYWORDS)


def peek(ds: Dataset, tag: int) -> list[str]:
    """The element's values as text, decoded with the dataset's character set, without changing
    the dataset (a raw element stays raw, so it is still written back byte for byte)."""
    elem: Any = ds._dict.get(tag)
    if elem is None:
        return []
    if isinstance(elem, RawDataElement):
        if elem.value is None or elem.length == 0:
            return []
        elem = convert_raw_data_element(elem, encoding=ds._character_set, ds=ds)
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    return [text] if text else []


def name_tokens(name: str) -> set[str]:
    """Tokens of a person name: each component, each word of it, the ideographic whole."""
    tokens: set[str] = set()
    for group in name.split("="):
        parts = [p.strip() for p in group.split("^") if p.strip()]
        tokens.update(parts)
        tokens.add(" ".join(parts))
        for part in parts:
            tokens.update(_WORD_SPLIT.split(part))
        if parts and not parts[0].isascii():
            tokens.add("".join(parts[:2]))  # family + given written together, as CJK text does
    return {t for t in tokens if len(t) >= MIN_NAME_PART}


def date_tokens(value: str) -> set[str]:
    """A DA value in the forms free text writes it."""
    if len(value) != 8 or not value.isdigit():
        return {value} if len(value) >= MIN_TOKEN else set()
    y, m, d = value[:4], value[4:6], value[6:]
    return {value, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}"}


class IdentityTokens:
    """The identity values of one object; ``found_in`` says whether a text contains one."""

    def __init__(self, names: Iterable[str] = (), others: Iterable[str] = ()) -> None:
        tokens = {t.strip() for t in names if len(t.strip()) >= MIN_NAME_PART}
        tokens |= {t.strip() for t in others if len(t.strip()) >= MIN_TOKEN}
        self.tokens = sorted(tokens, key=lambda t: (-len(t), t))
        self._pattern: re.Pattern[str] | None = None

    @classmethod
    def of(cls, ds: Dataset) -> IdentityTokens:
        """The tokens of the (top-level) identity attributes of ``ds``, as they are now."""
        names: set[str] = set()
        others: set[str] = set()
        for tag in _NAME_TAGS:
            for value in peek(ds, tag):
                names |= name_tokens(value)
        for tag in _WHOLE_TAGS:
            others.update(peek(ds, tag))
        for item in _items(ds, _OTHER_IDS_SEQUENCE):
            others.update(peek(item, _PATIENT_ID))
        for value in peek(ds, _BIRTH_DATE):
            others |= date_tokens(value)
        return cls(names, others)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` contains a token as a whole word (case-insensitive)."""
        if not self.tokens:
            return False
        if self._pattern is None:
            alternatives = "|".join(re.escape(t) for t in self.tokens)
            self._pattern = re.compile(
                rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE
            )
        return self._pattern.search(text) is not None


def _items(ds: Dataset, tag: int) -> list[Dataset]:
    if tag not in ds._dict:
        return []
    try:
        value = ds[tag].value
    except Exception:  # an unreadable sequence yields no tokens; the walker reports it
        return []
    return list(value) if value else []
