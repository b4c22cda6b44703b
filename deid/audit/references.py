"""References between objects: what an RTSS, SEG, SR or image points at, and which links dangle.

A reference is found wherever the standard puts one, at any depth: an item with a Referenced SOP
Instance UID (RTSS Contour Image Sequence, SEG Source/Derivation Image Sequence, SR evidence and
IMAGE/SCOORD content items, Referenced/Source Image Sequence in images), a Series or Study
Instance UID inside a sequence item (RT Referenced Series, Referenced Series Sequence, SR
evidence), a referenced Frame of Reference UID, and SR UIDREF content items.  Only what points at
a Storage SOP instance must resolve to a released object; the other kinds are reported for
consistency checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

from deid.profile.tags import format_tag

_REFERENCED_SOP_CLASS = 0x00081150
_REFERENCED_SOP_INSTANCE = 0x00081155
_SERIES_UID = 0x0020000E
_STUDY_UID = 0x0020000D
_FRAME_OF_REFERENCE_UIDS = (0x00200052, 0x30060024, 0x300600C2)  # FoR UID, Referenced FoR UID, Related FoR UID
_UIDREF = 0x0040A124
_DETACHED_STUDY = "1.2.840.10008.3.1.2.3.1"
_STORAGE_ROOT = "1.2.840.10008.5.1.4.1.1."

Where = tuple[tuple[int, int], ...]  # (sequence tag, item index) pairs from the top

KINDS = ("instance", "series", "study", "frame_of_reference", "uidref")


@dataclass(frozen=True)
class Reference:
    """One outgoing reference of an object (UIDs as they are in that object)."""

    kind: str  # one of KINDS
    uid: str
    sop_class_uid: str  # for kind "instance": the Referenced SOP Class UID; else ""
    path: str  # element path of the referencing element: tags and item numbers only

    def as_dict(self) -> dict[str, str]:
        """As dataclasses.asdict gives it (field order), without its recursive copy."""
        return {"kind": self.kind, "uid": self.uid, "sop_class_uid": self.sop_class_uid,
                "path": self.path}


@cache
def is_storage_class(uid: str) -> bool:
    """True for a Storage SOP Class (an object that can be stored, and so released)."""
    entry = UID_dictionary.get(uid)
    if entry is not None:
        return entry[1] == "SOP Class" and "Storage" in entry[0] and "Commitment" not in entry[0]
    return uid.startswith(_STORAGE_ROOT)


def _uid(ds: Dataset, tag: int) -> str:
    """The first value of a UI element; raw bytes are ASCII, decoded directly (the element stays
    raw, so it is still written back byte for byte)."""
    elem: Any = ds._dict.get(tag)
    if elem is None:
        return ""
    if isinstance(elem, RawDataElement):
        text = (elem.value or b"").decode("ascii", errors="replace")
    else:
        value = elem.value
        if isinstance(value, (MultiValue, list, tuple)):
            value = value[0] if len(value) else ""
        text = "" if value is None else str(value)
    return text.split("\\")[0].strip("\x00 ")


def level_references(ds: Dataset, where: Where) -> Iterator[Reference]:
    """The references held by ``ds`` itself (not its sequences); ``where`` is its position as
    (sequence tag, item index) pairs from the top, empty for the object itself."""
    prefix = "".join(f"{format_tag(t)}[{i}]." for t, i in where)
    nested = bool(where)
    if nested:
        instance = _uid(ds, _REFERENCED_SOP_INSTANCE)
        if instance:
            sop_class = _uid(ds, _REFERENCED_SOP_CLASS)
            path = prefix + format_tag(_REFERENCED_SOP_INSTANCE)
            if sop_class == _DETACHED_STUDY:
                yield Reference("study", instance, "", path)
            elif not sop_class or is_storage_class(sop_class):
                yield Reference("instance", instance, sop_class, path)
        for tag, kind in ((_SERIES_UID, "series"), (_STUDY_UID, "study")):
            value = _uid(ds, tag)
            if value:
                yield Reference(kind, value, "", prefix + format_tag(tag))
        uidref = _uid(ds, _UIDREF)
        if uidref:
            yield Reference("uidref", uidref, "", prefix + format_tag(_UIDREF))
    for tag in _FRAME_OF_REFERENCE_UIDS:
        if tag == 0x00200052 and not nested:
            continue  # the object's own Frame of Reference, not a reference
        value = _uid(ds, tag)
        if value:
            yield Reference("frame_of_reference", value, "", prefix + format_tag(tag))


def _walk(ds: Dataset, where: Where) -> Iterator[Reference]:
    yield from level_references(ds, where)
    for elem in ds:
        if elem.VR != "SQ" or not isinstance(elem.value, Sequence):
            continue
        for index, item in enumerate(elem.value):
            yield from _walk(item, where + ((elem.tag, index),))


def walked_references(items: Iterable[tuple[Dataset, Where]]) -> list[Reference]:
    """The same references as :func:`references`, from datasets already visited in dataset order
    with their positions (the walker's list), without walking the object again."""
    return [ref for ds, where in items for ref in level_references(ds, where)]


def references(ds: Dataset) -> list[Reference]:
    """Every reference in ``ds`` at any depth, in dataset order (duplicates kept: each path once)."""
    return list(_walk(ds, ()))


def dangling(refs: Iterable[Reference], released: Mapping[str, str]) -> list[Reference]:
    """Instance references that do not resolve: the UID is not among ``released``
    (SOP Instance UID -> SOP Class UID), or the released object has another SOP Class."""
    found = []
    for ref in refs:
        if ref.kind != "instance":
            continue
        sop_class = released.get(ref.uid)
        if sop_class is None or (ref.sop_class_uid and sop_class != ref.sop_class_uid):
            found.append(ref)
    return found
