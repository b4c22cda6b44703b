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
from dataclasses import asdict, dataclass
from functools import cache

from pydicom.dataset import Dataset
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

KINDS = ("instance", "series", "study", "frame_of_reference", "uidref")


@dataclass(frozen=True)
class Reference:
    """One outgoing reference of an object (UIDs as they are in that object)."""

    kind: str  # one of KINDS
    uid: str
    sop_class_uid: str  # for kind "instance": the Referenced SOP Class UID; else ""
    path: str  # element path of the referencing element: tags and item numbers only

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@cache
def is_storage_class(uid: str) -> bool:
    """True for a Storage SOP Class (an object that can be stored, and so released)."""
    entry = UID_dictionary.get(uid)
    if entry is not None:
        return entry[1] == "SOP Class" and "Storage" in entry[0] and "Commitment" not in entry[0]
    return uid.startswith(_STORAGE_ROOT)


def _text(ds: Dataset, tag: int) -> str:
    elem = ds.get(tag)
    if elem is None or elem.value is None:
        return ""
    value = elem.value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else ""
    return str(value).strip().rstrip("\x00")


def _walk(ds: Dataset, prefix: str, nested: bool) -> Iterator[Reference]:
    here = prefix
    if nested:
        instance = _text(ds, _REFERENCED_SOP_INSTANCE)
        if instance:
            sop_class = _text(ds, _REFERENCED_SOP_CLASS)
            path = here + format_tag(_REFERENCED_SOP_INSTANCE)
            if sop_class == _DETACHED_STUDY:
                yield Reference("study", instance, "", path)
            elif not sop_class or is_storage_class(sop_class):
                yield Reference("instance", instance, sop_class, path)
        for tag, kind in ((_SERIES_UID, "series"), (_STUDY_UID, "study")):
            value = _text(ds, tag)
            if value:
                yield Reference(kind, value, "", here + format_tag(tag))
        uidref = _text(ds, _UIDREF)
        if uidref:
            yield Reference("uidref", uidref, "", here + format_tag(_UIDREF))
    for tag in _FRAME_OF_REFERENCE_UIDS:
        if tag == 0x00200052 and not nested:
            continue  # the object's own Frame of Reference, not a reference
        value = _text(ds, tag)
        if value:
            yield Reference("frame_of_reference", value, "", here + format_tag(tag))
    for elem in ds:
        if elem.VR != "SQ" or not isinstance(elem.value, Sequence):
            continue
        for index, item in enumerate(elem.value):
            yield from _walk(item, f"{here}{format_tag(elem.tag)}[{index}].", True)


def references(ds: Dataset) -> list[Reference]:
    """Every reference in ``ds`` at any depth, in dataset order (duplicates kept: each path once)."""
    return list(_walk(ds, "", False))


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
