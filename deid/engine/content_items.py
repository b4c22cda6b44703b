"""Clean SR content trees item by item, before the walker applies the element rules.

A content item's value (TEXT, PNAME, UIDREF, DATE, TIME, DATETIME, and the date of a TCOORD)
is required in the item (Type 1C), so an item whose value the rules remove or empty is not
left behind half empty: the compiler turns that decision into ``remove_item`` or
``quarantine`` (the profile's ``structured_content.value_removed``), and this module carries it
out. A TEXT value the rules keep is checked against the object's own identity values
(``deid.engine.review.IdentityTokens``): one that contains a name, ID, accession number, birth
date or the institution is removed with its item, or the object quarantined
(``structured_content.text_with_identity``). Every other value (PNAME, dates, UIDREF) is left
for the walker, which applies the same compiled decisions as everywhere else. Measurements,
codes and coordinates are never changed; an item whose removal would take measurements,
coordinates or references with it is not removed: the object is quarantined instead.

Removing an item shifts the positions of its later siblings, so by-reference relationships
(Referenced Content Item Identifier) are renumbered; one that pointed at a removed item
quarantines the object.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deid.engine.review import IdentityTokens, peek
from deid.engine.vr import vr_of
from deid.errors import ObjectError
from deid.profile.tags import format_tag

if TYPE_CHECKING:
    from deid.engine.compiler import CompiledRules

TEXT_VALUE = 0x0040A160
VALUE_TYPE = 0x0040A040
CONTENT_SEQUENCE = 0x0040A730
REFERENCED_CONTENT_ITEM = 0x0040DB73
#: The attribute that holds a content item's value, for the value types a rule can remove.
CONTENT_VALUE_TAGS: dict[int, str] = {
    0x0040A160: "TEXT",  # Text Value
    0x0040A123: "PNAME",  # Person Name
    0x0040A124: "UIDREF",  # UID
    0x0040A121: "DATE",  # Date
    0x0040A122: "TIME",  # Time
    0x0040A120: "DATETIME",  # DateTime
    0x0040A13A: "TCOORD",  # Referenced DateTime (one of the three TCOORD value forms)
}
#: Value types a removal must not take with it: measurements, coordinates, references.
KEPT_VALUE_TYPES = frozenset(
    {"NUM", "SCOORD", "SCOORD3D", "TCOORD", "IMAGE", "COMPOSITE", "WAVEFORM"}
)

Where = tuple[tuple[int, int], ...]


def _path_text(where: Where, tag: int | None = None) -> str:
    text = "".join(f"{format_tag(t)}[{i}]." for t, i in where)
    return text + format_tag(tag) if tag is not None else text.rstrip(".")


class ContentTreeCleaner:
    """Removes the content items of one object that the rules and the identity check reject."""

    def __init__(self, rules: CompiledRules, tokens: IdentityTokens) -> None:
        self.rules = rules
        self.profile = rules.profile
        self.tokens = tokens  # the object's identity values, captured before any rule ran
        self.counts: Counter[str] = Counter()

    def clean(self, ds: Dataset) -> Counter[str]:
        """Clean ``ds`` in place (call before the walker); return what was done, by kind."""
        removed: list[tuple[Dataset, Where]] = []
        ids_before = _content_ids(ds) if REFERENCED_CONTENT_ITEM in _all_tags(ds) else None
        self._clean_dataset(ds, (), (), removed)
        if removed and ids_before is not None:
            _renumber_references(ds, ids_before)
        return self.counts

    # -- traversal ----------------------------------------------------------------------------
    def _clean_dataset(
        self, ds: Dataset, path: tuple[int, ...], where: Where, removed: list[tuple[Dataset, Where]]
    ) -> None:
        for tag, raw in list(ds._dict.items()):
            vr = raw.VR or vr_of(tag)
            if vr != "SQ":
                continue
            if self.rules.decide(path, tag, "SQ").action in ("remove", "empty"):
                continue  # the walker removes or empties it: nothing inside is released
            sequence = ds[tag].value
            if not isinstance(sequence, Sequence):
                continue
            kept: list[Dataset] = []
            for index, item in enumerate(sequence):
                item_where = where + ((tag, index),)
                if self._rejects(item, path + (tag,), item_where):
                    removed.append((item, item_where))
                    self.counts["remove_item"] += 1
                    continue
                self._clean_dataset(item, path + (tag,), item_where, removed)
                kept.append(item)
            if len(kept) != len(sequence):
                ds[tag].value = Sequence(kept)

    def _rejects(self, item: Dataset, path: tuple[int, ...], where: Where) -> bool:
        """Whether the item goes; raises ObjectError when the object must be quarantined."""
        for tag in CONTENT_VALUE_TAGS:
            raw: Any = item._dict.get(tag)
            if raw is None:
                continue
            vr = raw.VR or vr_of(tag)
            decision = self.rules.decide(path, tag, vr)
            if decision.action == "quarantine":
                raise ObjectError(
                    "content-item-value-removed",
                    "the profile removes the value of a content item, which the item requires, and "
                    "structured_content.value_removed is quarantine: review the object, or set "
                    "it to remove_item",
                    stage="rules",
                    path=_path_text(where, tag),
                )
            if decision.action == "remove_item":
                return self._removable(
                    item, where, "the profile removes the value of this content item"
                )
            if tag == TEXT_VALUE and decision.action == "keep" and self._names_identity(item):
                self.counts["text_with_identity"] += 1
                if self.profile.text_with_identity == "quarantine":
                    raise ObjectError(
                        "text-contains-identity",
                        "a TEXT content item contains the patient's name, ID, accession number, "
                        "birth date or institution, and structured_content.text_with_identity is "
                        "quarantine: review the report, or set it to remove_item",
                        stage="rules",
                        path=_path_text(where, tag),
                    )
                return self._removable(
                    item, where, "a TEXT content item contains an identity value"
                )
        return False

    def _names_identity(self, item: Dataset) -> bool:
        return any(self.tokens.found_in(text) for text in peek(item, TEXT_VALUE))

    @staticmethod
    def _removable(item: Dataset, where: Where, why: str) -> bool:
        kept = ", ".join(sorted(_value_types_below(item) & KEPT_VALUE_TYPES))
        if kept:
            raise ObjectError(
                "content-item-not-removable",
                f"{why}, but removing it would also remove the measurements, coordinates or "
                f"references beneath it ({kept}): review the object",
                stage="rules",
                path=_path_text(where),
            )
        return True


def _value_types_below(item: Dataset) -> set[str]:
    kinds: set[str] = set()
    for child in item.get("ContentSequence", []) or []:
        kinds.add(str(child.get("ValueType", "")))
        kinds |= _value_types_below(child)
    return kinds


def _all_tags(ds: Dataset) -> set[int]:
    """Tags present at any depth of the content tree (only walks ContentSequence)."""
    tags = set(ds._dict)
    for item in ds.get("ContentSequence", []) or []:
        tags |= _all_tags(item)
    return tags


def _content_ids(ds: Dataset, prefix: tuple[int, ...] = (1,)) -> dict[int, tuple[int, ...]]:
    """Each content item (by object id) -> its Referenced Content Item Identifier (root = 1)."""
    ids: dict[int, tuple[int, ...]] = {id(ds): prefix}
    for number, item in enumerate(ds.get("ContentSequence", []) or [], start=1):
        ids.update(_content_ids(item, prefix + (number,)))
    return ids


def _renumber_references(ds: Dataset, before: dict[int, tuple[int, ...]]) -> None:
    """Point by-reference relationships at the items' new positions after removals."""
    after = _content_ids(ds)
    new_id = {before[key]: value for key, value in after.items() if key in before}
    gone = {ident for key, ident in before.items() if key not in after}

    def fix(node: Dataset, where: Where) -> None:
        if REFERENCED_CONTENT_ITEM in node._dict:
            old = tuple(int(v) for v in _as_list(node[REFERENCED_CONTENT_ITEM].value))
            if old in gone or (old not in new_id and _under_any(old, gone)):
                raise ObjectError(
                    "content-reference-removed",
                    "a by-reference relationship points at a content item that de-identification "
                    "removed: review the report",
                    stage="rules",
                    path=_path_text(where, REFERENCED_CONTENT_ITEM),
                )
            if old in new_id and new_id[old] != old:
                node[REFERENCED_CONTENT_ITEM].value = list(new_id[old])
        for index, child in enumerate(node.get("ContentSequence", []) or []):
            fix(child, where + ((CONTENT_SEQUENCE, index),))

    fix(ds, ())


def _under_any(ident: tuple[int, ...], gone: set[tuple[int, ...]]) -> bool:
    return any(ident[: len(g)] == g for g in gone)


def _as_list(value: Any) -> list[Any]:
    if (
        isinstance(value, (list, tuple))
        or hasattr(value, "__iter__")
        and not isinstance(value, (str, bytes))
    ):
        return list(value)
    return [value]
