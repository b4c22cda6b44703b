"""The in-process IOD check: Type 1 present and non-empty, Type 2 present, values fit their VR.

Types come from the IOD tables packaged in ``deid.standard`` (dicom3tools 2024-12-20), module by
module: a mandatory module is always checked, a conditional or user-optional one only when one of
its top-level attributes is present (the table does not say when a module is required). Types
1C/2C are skipped (their conditions are not in the table), except in SR content items, where the
condition is the item's Value Type and is checked here (the table lists every value type's
attributes as if all applied). Nested rows are checked in every item of a sequence that is present;
SR content items at any depth take the rows of the first level. The file meta group is not
checked (the writer builds it).

A problem names its kind and the element path (tags and item numbers, never a value).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from deid import standard
from deid.engine.vr import vr_of
from deid.io.tagkeys import tag_key
from deid.profile.tags import format_tag

CONTENT_SEQUENCE = 0x0040A730
VALUE_TYPE = 0x0040A040
RELATIONSHIP_TYPE = 0x0040A010
REFERENCED_CONTENT_ITEM = 0x0040DB73
# What each SR value type requires of its item (PS3.3 C.17.3 Document Content Macro, C.18).
_BY_VALUE_TYPE: dict[str, tuple[tuple[int, int], ...]] = {
    "TEXT": ((0x0040A160, 1),),
    "DATETIME": ((0x0040A120, 1),),
    "DATE": ((0x0040A121, 1),),
    "TIME": ((0x0040A122, 1),),
    "PNAME": ((0x0040A123, 1),),
    "UIDREF": ((0x0040A124, 1),),
    "NUM": ((0x0040A300, 2),),
    "CODE": ((0x0040A168, 1),),
    "COMPOSITE": ((0x00081199, 1),),
    "IMAGE": ((0x00081199, 1),),
    "WAVEFORM": ((0x00081199, 1),),
    "SCOORD": ((0x00700022, 1), (0x00700023, 1)),
    "SCOORD3D": ((0x00700022, 1), (0x00700023, 1), (0x30060024, 1)),
    "TCOORD": ((0x0040A130, 1),),
    "CONTAINER": ((0x0040A050, 1),),
}
_VALUE_ATTRIBUTES = frozenset(tag for rows in _BY_VALUE_TYPE.values() for tag, _ in rows)

# Value forms (PS3.5 6.2). Text VRs: maximum characters of one value.
_MAX_CHARS = {"AE": 16, "CS": 16, "LO": 64, "SH": 16, "ST": 1024, "LT": 10240, "UC": None}
_FORMS = {
    "AS": re.compile(r"^\d{3}[DWMY]$"),
    "CS": re.compile(r"^[A-Z0-9 _]*$"),
    "DA": re.compile(r"^\d{8}$"),
    "DS": re.compile(r"^ *[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)? *$"),
    "DT": re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?$"),
    "IS": re.compile(r"^ *[+-]?\d+ *$"),
    "TM": re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$"),
    "UI": re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$"),
}
_LIMITS = {"AS": 4, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "TM": 14, "UI": 64}
_BINARY_SIZE = {
    "US": 2,
    "SS": 2,
    "UL": 4,
    "SL": 4,
    "FL": 4,
    "FD": 8,
    "AT": 4,
    "OW": 2,
    "OF": 4,
    "OD": 8,
    "OL": 4,
    "OV": 8,
    "UV": 8,
    "SV": 8,
}
_SINGLE_VALUE = frozenset({"LT", "ST", "UT", "UR"})
_STRIPPED = frozenset({"DA", "TM", "DT", "AS", "CS", "UI"})  # of _FORMS: spaces at both ends go
# text VRs (not of _FORMS) -> the most bytes a raw value may have that can only fit (None: any)
_RAW_TEXT_LIMITS = {vr: limit for vr, limit in _MAX_CHARS.items() if vr not in _FORMS} | {"PN": 64}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
# (VR of _FORMS, raw value) -> whether it fits (_form_fits, which reads nothing else): the rules
# write the same few values into every object of a series (dummies, shifted dates, the series'
# new UIDs): a CT series' 19 checks per slice are found here but for its new SOP Instance UID.
# Short bytes values only; at most _FORM_FITS_MOST, then it starts again (each object adds its
# new SOP Instance UID: the values kept are the series' at hand, not a long run's first ones).
_FORM_FITS: dict[tuple[str, bytes], bool] = {}
_FORM_FITS_MOST = 4096
_FORM_FITS_LONGEST = 256


@dataclass(frozen=True)
class Problem:
    """One way an object does not meet its IOD: ``kind`` and where (tags and item numbers)."""

    kind: str  # type1-missing, type1-empty, type2-missing, value-does-not-fit-vr
    path: str

    @property
    def key(self) -> tuple[str, str]:
        """Kind and path without item numbers: how problems of input and output are matched."""
        return self.kind, re.sub(r"\[\d+\]", "", self.path)

    def describe(self) -> str:
        return f"{self.kind} at {self.path}"


_Rows = dict[tuple[int, ...], tuple[tuple[int, int], ...]]  # path -> ((tag, level), ...)
_Children = dict[tuple[int, ...], frozenset[int]]  # path -> tags of sequences with rows below


@cache
def _module_rows(module: str) -> tuple[_Rows, frozenset[int], tuple[tuple[int, ...], ...]]:
    """A module's Type 1 and 2 rows by path, its top-level tags, its recursion points."""
    rows: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    top: set[int] = set()
    for path, tag, typ in standard.module_attribute_rows(module):
        if (tag >> 16) & 0xFF00 in (0x5000, 0x6000):
            continue  # repeating groups (overlay, curve): de-identification removes them
        tag = tag_key(tag)  # (the scan's key object: found by identity)
        if not path:
            top.add(tag)
        if typ in ("1", "2"):
            rows.setdefault(path, []).append((tag, int(typ)))
    frozen = {path: tuple(found) for path, found in rows.items()}
    return frozen, frozenset(top), standard.module_recursion_points(module)


def _collapse(path: tuple[int, ...], points: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    for point in points:
        n = len(point)
        if len(path) > n and path[:n] == point and path[n] == CONTENT_SEQUENCE:
            end = n
            while end < len(path) and path[end] == CONTENT_SEQUENCE:
                end += 1
            return point + path[end:]
    return path


def iod_problems(ds: Dataset, sop_class_uid: str) -> list[Problem]:
    """Every Type 1/2 and VR problem of ``ds`` in the IOD of ``sop_class_uid`` (none if unknown)."""
    modules = _iod_modules(sop_class_uid)
    if not modules:
        return []
    present = set(ds._dict)
    checked = tuple(module for module, mandatory, top in modules
                    if mandatory or not top.isdisjoint(present))
    rows, points, children = _merged_rows(checked)
    problems: list[Problem] = []
    _check_item(ds, (), "", rows, points, children, problems)
    problems.extend(vr_problems(ds))
    return problems


@lru_cache(maxsize=256)  # (bounded: the SOP class is the input's, any a hostile peer makes up)
def _iod_modules(sop_class_uid: str) -> tuple[tuple[str, bool, frozenset[int]], ...]:
    """The modules of the IOD of ``sop_class_uid`` the check may take: each with whether it is
    mandatory and its top-level tags (the file meta group left out)."""
    return tuple((module, usage == "M", _module_rows(module)[1])
                 for _ie, module, usage in standard.iod_modules(sop_class_uid)
                 if module != "FileMetaInformation")


@lru_cache(maxsize=1024)  # (bounded: which optional modules are present is the input's)
def _merged_rows(modules: tuple[str, ...]) -> tuple[_Rows, tuple[tuple[int, ...], ...], _Children]:
    """The Type 1/2 rows of the modules checked together (strictest level per path and tag), their
    recursion points, and the sequences that have rows below them, by the path they are at."""
    merged: dict[tuple[int, ...], dict[int, int]] = {}
    points: list[tuple[int, ...]] = []
    for module in modules:
        rows, _top, module_points = _module_rows(module)
        for path, found in rows.items():
            for tag, level in found:
                at = merged.setdefault(path, {})
                at[tag] = min(level, at.get(tag, level))
        points.extend(p for p in module_points if p not in points)
    children: dict[tuple[int, ...], set[int]] = {}
    for path in merged:
        if path:
            children.setdefault(path[:-1], set()).add(tag_key(path[-1]))
    return ({path: tuple(found.items()) for path, found in merged.items()}, tuple(points),
            {path: frozenset(tags) for path, tags in children.items()})


def _check_item(
    ds: Dataset,
    path: tuple[int, ...],
    where: str,
    rows: _Rows,
    points: tuple[tuple[int, ...], ...],
    children: _Children,
    problems: list[Problem],
) -> None:
    key = _collapse(path, points) if points else path
    required = rows.get(key, ())
    content_item = bool(points) and (key in points or not key)  # the document root is one too
    if content_item:
        required = tuple(
            r for r in required if r[0] not in _VALUE_ATTRIBUTES and r[0] != VALUE_TYPE
        )
        required += _content_item_rows(ds)
    for tag, level in required:
        elem: Any = ds._dict.get(tag)
        if elem is None:
            problems.append(Problem(f"type{level}-missing", where + format_tag(tag)))
        elif level == 1 and is_empty(ds, tag, elem):
            problems.append(Problem("type1-empty", where + format_tag(tag)))
    if points:
        elements = list(ds._dict.items())
    else:  # (without recursion points, only a sequence with rows below its path can have any)
        below = children.get(path)
        if below is None:
            return
        elements = [(tag, elem) for tag, elem in ds._dict.items() if tag in below]
    for tag, elem in elements:
        if (elem.VR or vr_of(tag)) != "SQ":
            continue
        child = path + (int(tag),)
        child_key = _collapse(child, points) if points else child
        if child_key not in rows and not (points and child_key in points):
            continue
        value = ds[tag].value
        if isinstance(value, Sequence):
            for index, item in enumerate(value):
                _check_item(item, child, f"{where}{format_tag(tag)}[{index}].", rows, points,
                            children, problems)


def _content_item_rows(item: Dataset) -> tuple[tuple[int, int], ...]:
    if REFERENCED_CONTENT_ITEM in item._dict:  # a by-reference relationship has no value
        return ()
    value_type = str(item.get("ValueType", "") or "").strip()
    return ((VALUE_TYPE, 1),) + _BY_VALUE_TYPE.get(value_type, ())


def is_empty(ds: Dataset, tag: int, elem: Any) -> bool:
    """Whether an element (raw or read) holds no value."""
    if isinstance(elem, RawDataElement):
        return not elem.length
    value = elem.value
    if value is None or value == "" or value == b"":
        return True
    return isinstance(value, (Sequence, MultiValue, list)) and len(value) == 0


# -- values fit their VR ------------------------------------------------------------------------
def vr_problems(ds: Dataset, where: str = "") -> Iterator[Problem]:
    """Values that do not fit their VR, at any depth, among the values de-identification wrote:
    an element still raw at its offset in the file (``value_tell`` > 0) holds the input's bytes,
    so it cannot be a problem de-identification added, and is skipped (which keeps the check
    cheap). Text is read as stored, decoded only when a length check needs the character set."""
    for tag, elem in list(ds._dict.items()):
        raw = isinstance(elem, RawDataElement)
        if raw and elem.value_tell:  # (a raw sequence: nothing in it changed)
            continue
        vr = elem.VR or vr_of(tag)
        if vr == "SQ":
            value = ds[tag].value
            if isinstance(value, Sequence):
                for index, item in enumerate(value):
                    yield from vr_problems(item, f"{where}{format_tag(tag)}[{index}].")
            continue
        group = tag >> 16
        if group == 0x7FE0 or group & 1:
            continue  # pixel data; private values have no standard VR to hold them to
        if not (_raw_fits(ds, tag, vr, elem) if raw else _fits(ds, tag, vr, elem)):
            yield Problem("value-does-not-fit-vr", where + format_tag(tag))


def _raw_fits(ds: Dataset, tag: int, vr: str, elem: RawDataElement) -> bool:
    """:func:`_fits` of a raw element, the common cases read from its bytes in one step: a
    binary value, one of the ASCII-only VRs (:func:`_texts`' reading), a text no longer in
    bytes than its limit in characters; anything else as :func:`_fits` reads it."""
    size = _BINARY_SIZE.get(vr)
    if size is not None:
        return elem.value is None or len(elem.value) % size == 0
    if vr in _FORMS:
        value = elem.value
        if value.__class__ is not bytes or len(value) > _FORM_FITS_LONGEST:
            return _form_fits(vr, value)
        key = (vr, value)
        fits = _FORM_FITS.get(key)
        if fits is None:
            fits = _form_fits(vr, value)
            if len(_FORM_FITS) >= _FORM_FITS_MOST:
                _FORM_FITS.clear()
            _FORM_FITS[key] = fits
        return fits
    if vr not in _RAW_TEXT_LIMITS:
        return True  # a VR whose values are not checked
    limit = _RAW_TEXT_LIMITS[vr]
    if limit is None or len(elem.value or b"") <= limit:
        return True  # no longer than the limit in bytes: no longer in characters either
    return _fits(ds, tag, vr, elem)  # decoded with the character set


def _form_fits(vr: str, data: bytes | None) -> bool:
    """Whether a raw value of a VR of :data:`_FORMS` fits it (:func:`_texts`' reading)."""
    try:
        text = (data or b"").decode("ascii")
    except UnicodeDecodeError:
        return False
    text = text.rstrip("\x00 ") if vr == "UI" else text.rstrip(" ").rstrip("\x00")
    if vr in _STRIPPED:
        text = text.strip(" ")
    if not text:
        return True
    for value in text.split("\\"):  # (no VR of _FORMS holds a single value)
        if not _value_fits(vr, value):
            return False
    return True


def _fits(ds: Dataset, tag: int, vr: str, elem: Any) -> bool:
    raw = isinstance(elem, RawDataElement)
    if vr in _BINARY_SIZE:
        if raw:
            return elem.value is None or len(elem.value) % _BINARY_SIZE[vr] == 0
        return True  # a pydicom value is encoded to whole values
    if vr in _FORMS or vr in _MAX_CHARS or vr == "PN":
        values = _texts(ds, tag, vr, elem, raw)
        if values is None:
            return False
        return all(_value_fits(vr, v) for v in values)
    return True


def _texts(ds: Dataset, tag: int, vr: str, elem: Any, raw: bool) -> list[str] | None:
    if raw:
        data = elem.value or b""
        if vr in _FORMS:  # ASCII-only VRs: check the bytes as they are
            try:
                text = data.decode("ascii")
            except UnicodeDecodeError:
                return None
            text = text.rstrip("\x00 ") if vr == "UI" else text.rstrip(" ").rstrip("\x00")
            if vr in ("DA", "TM", "DT", "AS", "CS", "UI"):
                text = text.strip(" ")
            return [] if not text else (text.split("\\") if vr not in _SINGLE_VALUE else [text])
        limit = 64 if vr == "PN" else _MAX_CHARS.get(vr)
        if limit is None or len(data) <= limit:
            return []  # no longer than the limit in bytes: no longer in characters either
        elem = ds[tag]  # decoded with the character set
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return [str(v) for v in value]
    text = str(value)
    if vr in ("LO", "SH", "CS", "AE", "PN") or vr in _FORMS:
        return text.split("\\") if vr not in _SINGLE_VALUE else [text]
    return [text]


def _value_fits(vr: str, value: str) -> bool:
    if vr == "PN":
        return all(len(group) <= 64 for group in value.split("="))
    if vr in _MAX_CHARS:
        limit = _MAX_CHARS[vr]
        text = value.rstrip(" ") if vr != "AE" else value.strip(" ")
        if limit is not None and len(text) > limit:
            return False
        if vr == "CS":
            return bool(_FORMS["CS"].match(text))
        return vr in ("ST", "LT", "UC") or not _CONTROL.search(text)
    if not value:
        return True
    ranged = value.count("-") == 1 and (vr in ("DA", "TM") or vr == "DT" and "+" not in value)
    if ranged and all(not part or _value_fits(vr, part) for part in value.split("-")):
        return True  # a range (a query form): only an input brought it; de-id kept its form
    limit = _LIMITS.get(vr)
    if limit is not None and len(value) > limit:
        return False
    form = _FORMS.get(vr)
    if vr == "IS" and form and form.match(value):
        return -(2**31) <= int(value) < 2**31
    return form is None or bool(form.match(value))
