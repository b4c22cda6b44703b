"""Attribute Types (1, 1C, 2, 2C, 3) per IOD, from dicom3tools' templates (release 2024-12-20).

The data (``data/iod_types_dicom3tools_20241220.json``, made by
``python -m deid.standard.generate_iod_types``) lists the 128 composite IODs of dicom3tools with
their modules; see ``data/README.md`` for what was converted and how.

Lookups are keyed by SOP Class UID, the nesting path (tags of the enclosing sequences, outermost
first; ``()`` at the top level) and the tag. When an attribute appears in several modules of an IOD
(e.g. Manufacturer: General Equipment 2, Enhanced General Equipment 1), the strictest Type wins,
whatever the module's usage (M/C/U): an attribute that is present belongs to a module that is
present. Not found -> None (absent from the IOD, or a SOP class without an IOD here); callers treat
that as Type 3.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from deid.standard._data import IOD_TYPES_FILE, load_json

CONTENT_SEQUENCE = 0x0040A730
TYPE_ORDER: Mapping[str, int] = MappingProxyType({"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4})
_LEVEL = {"1": 1, "1C": 1, "2": 2, "2C": 2}

Path = tuple[int, ...]
_Table = tuple[dict[tuple[Path, int], str], tuple[Path, ...]]
_EMPTY: _Table = ({}, ())


def _parse_path(text: str) -> Path:
    return tuple(int(part, 16) for part in text.split(">")) if text else ()


@cache
def _model() -> tuple[dict, dict[str, dict[str, dict[str, str]]], dict[str, list[str]]]:
    """The data as stored (IODs, modules, recursion points); each module is parsed when first
    used (:func:`_module`): an object's IOD needs ~25 of them, and parsing all of them cost a
    run's start-up ~20 ms."""
    data = load_json(IOD_TYPES_FILE)
    return data["iods"], data["modules"], data["recursion"]


@cache
def _module(name: str) -> tuple[tuple[Path, int, str], ...]:
    """``(path, tag, type)`` of a module; KeyError if there is no such module."""
    return tuple(
        (_parse_path(path), int(tag, 16), typ)
        for path, tags in _model()[1][name].items()
        for tag, typ in tags.items()
    )


@cache
def _recursion(name: str) -> tuple[Path, ...]:
    return tuple(_parse_path(path) for path in _model()[2].get(name, ()))


@cache
def sop_class_uids() -> Mapping[str, str]:
    """SOP Class UID -> dicom3tools IOD name, for every IOD that has a SOP class (116 UIDs)."""
    iods = _model()[0]
    return MappingProxyType({uid: name for name, iod in iods.items() for uid in iod["sop_classes"]})


def iod_for_sop_class(sop_class_uid: str) -> str | None:
    """The dicom3tools IOD name for a SOP Class UID ('CTImage', 'RTStructureSet', ...), or None."""
    uids = sop_class_uids()
    name = uids.get(sop_class_uid)
    if name is None and isinstance(sop_class_uid, str):
        name = uids.get(sop_class_uid.strip("\x00 "))
    return name


@cache
def _iod_table(iod: str) -> tuple[_Table, tuple[tuple[Path, int, str], ...]]:
    iods = _model()[0]
    types: dict[tuple[Path, int], str] = {}
    seen: dict[Path, None] = {}  # the recursion points, each once, in the order first met
    for _ie, module, _usage in iods[iod]["modules"]:
        for path, tag, typ in _module(module):
            key = (path, tag)
            old = types.get(key)
            if old is None or TYPE_ORDER[typ] < TYPE_ORDER[old]:
                types[key] = typ
        seen.update(dict.fromkeys(_recursion(module)))
    points = sorted(seen, key=len, reverse=True)
    rows = tuple((path, tag, typ) for (path, tag), typ in types.items())
    return (types, tuple(points)), rows


_TABLES: dict[str, _Table] = {}


def _table(sop_class_uid: str) -> _Table:
    table = _TABLES.get(sop_class_uid)
    if table is None:
        iod = iod_for_sop_class(sop_class_uid)
        table = _iod_table(iod)[0] if iod else _EMPTY
        _TABLES[sop_class_uid] = table
    return table


def _collapse(path: Path, points: tuple[Path, ...]) -> Path:
    """Map a path into a nested SR content item onto the item at its recursion point."""
    for point in points:
        n = len(point)
        if len(path) > n and path[n] == CONTENT_SEQUENCE and path[:n] == point:
            end = n
            while end < len(path) and path[end] == CONTENT_SEQUENCE:
                end += 1
            return point + path[end:]
    return path


def _fallback(table: _Table, path: Path, tag: int) -> str | None:
    types, points = table
    tags = [tag]
    group = tag >> 16
    if (group & 0xFF00) in (0x5000, 0x6000) and group & 0xFF and not group & 1:
        tags.append(tag & 0xFF00FFFF)  # repeating groups are stored as 5000 / 6000
    paths = [path]
    if points and CONTENT_SEQUENCE in path:
        collapsed = _collapse(path, points)
        if collapsed != path:
            paths.append(collapsed)
    for p in paths:
        for t in tags:
            typ = types.get((p, t))
            if typ is not None:
                return typ
    return None


def attribute_type(sop_class_uid: str, path: Path, tag: int) -> str | None:
    """Type '1', '1C', '2', '2C' or '3' of the attribute ``tag`` at nesting ``path`` (a tuple of
    the enclosing sequences' tags, outermost first; ``()`` for the top level) in the IOD of
    ``sop_class_uid``: the strictest where it appears more than once. None when the attribute is
    not in the IOD or the SOP class is unknown (treat as Type 3)."""
    table = _TABLES.get(sop_class_uid) or _table(sop_class_uid)
    typ = table[0].get((path, tag))
    if typ is not None:
        return typ
    if not table[0]:
        return None
    return _fallback(table, path, tag)


def required_level(sop_class_uid: str, path: Path, tag: int) -> int:
    """1 for Type 1/1C, 2 for Type 2/2C, 3 otherwise (Type 3, absent, unknown SOP class)."""
    return _LEVEL.get(attribute_type(sop_class_uid, path, tag), 3)  # type: ignore[arg-type]


def iod_attribute_rows(sop_class_uid: str) -> tuple[tuple[Path, int, str], ...]:
    """All ``(path, tag, type)`` of the IOD of a SOP class (strictest Type per (path, tag), module
    order); ``()`` for an unknown SOP class. Repeating groups appear with group 5000 / 6000; SR
    content trees only down to the recursion point (see the module docstring)."""
    iod = iod_for_sop_class(sop_class_uid)
    return _iod_table(iod)[1] if iod else ()


def iod_modules(sop_class_uid: str) -> tuple[tuple[str, str, str], ...]:
    """``(information entity, module, usage M/C/U)`` of a SOP class's IOD; ``()`` if unknown."""
    iod = iod_for_sop_class(sop_class_uid)
    if not iod:
        return ()
    return tuple((ie, module, usage) for ie, module, usage in _model()[0][iod]["modules"])


def module_attribute_rows(module: str) -> tuple[tuple[Path, int, str], ...]:
    """``(path, tag, type)`` of a dicom3tools module ('GeneralEquipment', ...); KeyError if not."""
    return _module(module)


def module_recursion_points(module: str) -> tuple[Path, ...]:
    """The SR content-tree recursion points P of a module (``()`` when it has none): a content
    item at P + (0040,A730) x k + rest has the attributes of P + rest."""
    return _recursion(module)
