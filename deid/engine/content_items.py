"""Clean SR content trees item by item, before the walker applies the element rules.

What happens to a content item, in this order (``structured_content`` of the profile):

1. **Concept rules** (``concepts``): an item whose concept (Concept Name Code Sequence: code value +
   coding scheme designator) has a rule is removed, or gets a dummy, a given value or a keyed
   pseudonym, whatever its value type (observer, subject and procedure context; Tracking
   Identifier). A pseudonym is the keyed hash of :meth:`deid.engine.identity.Identity.hashed`, in
   the concept's own domain or in the one of the attribute named by ``same_as`` (so a Subject ID
   gets the released Patient ID); a UID is remapped like every UID.
2. **TEXT allow-list** (``keep_text``): where the rules keep Text Value, a TEXT item is kept only
   when its concept is listed; every other TEXT item is removed with its item, or the object
   quarantined (``text_not_kept``). A kept TEXT value goes on to the walker, whose review of kept
   free text checks it.
3. **Element rules**: an item whose value (TEXT, PNAME, UIDREF, DATE, TIME, DATETIME, the date of a
   TCOORD; required in the item, Type 1C) the rules remove or empty is removed or the object
   quarantined (``value_removed``: the compiler turns the decision into ``remove_item`` or
   ``quarantine``). Every other value is left for the walker.

Measurements, codes and coordinates are never changed. An item whose removal would take
measurements, coordinates or references with it (NUM, SCOORD, SCOORD3D, TCOORD, IMAGE, COMPOSITE,
WAVEFORM beneath it), or that a by-reference relationship points at, is not removed: a TEXT value is
replaced by the profile's placeholder (a PNAME, date or time by a dummy, a UID remapped, for a
concept rule), any other item quarantines the object (``content-item-not-removable``).

The values this module sets are held back from the walker (taken out of their items by
:meth:`ContentTreeCleaner.clean`, put back by :meth:`ContentTreeCleaner.put_back` after the walk),
so the element rules do not change them again.

Removing an item shifts the positions of its later siblings, so by-reference relationships
(Referenced Content Item Identifier) are renumbered; one that pointed at a removed item
quarantines the object.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deid.engine.review import peek
from deid.engine.vr import DUMMY, another_kind_of_value, fits, vr_of
from deid.errors import ObjectError
from deid.profile.model import ConceptRule
from deid.profile.tags import format_tag

if TYPE_CHECKING:
    from deid.engine.compiler import CompiledRules
    from deid.engine.walker import Walker

TEXT_VALUE = 0x0040A160
VALUE_TYPE = 0x0040A040
CONTENT_SEQUENCE = 0x0040A730
CONCEPT_NAME_CODE_SEQUENCE = 0x0040A043
UID_VALUE = 0x0040A124
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
_PSEUDONYM_VALUES = (0x0040A160, 0x0040A123, 0x0040A124)  # TEXT, PNAME, UIDREF: a hash or a UID
_CODE_VALUE_TAGS = (0x00080100, 0x00080119, 0x00080120)  # Code Value, Long and URN Code Value
_SCHEME = 0x00080102  # Coding Scheme Designator

Where = tuple[tuple[int, int], ...]


def _path_text(where: Where, tag: int | None = None) -> str:
    text = "".join(f"{format_tag(t)}[{i}]." for t, i in where)
    return text + format_tag(tag) if tag is not None else text.rstrip(".")


def concept_of(item: Dataset) -> tuple[str, str] | None:
    """The item's concept name as (code value, coding scheme designator), or None."""
    raw: Any = item._dict.get(CONCEPT_NAME_CODE_SEQUENCE)
    if raw is None:
        return None
    sequence = item[CONCEPT_NAME_CODE_SEQUENCE].value
    if not isinstance(sequence, Sequence) or not sequence:
        return None  # (empty, or a damaged header gave the sequence's tag another VR)
    code = sequence[0]
    value = next((v[0] for tag in _CODE_VALUE_TAGS if (v := peek(code, tag))), "")
    scheme = next(iter(peek(code, _SCHEME)), "")
    return (value, scheme) if value else None


@dataclass
class _HeldBack:
    """A content item's value taken out before the walk, and how its released value is made."""

    item: Dataset
    tag: int
    vr: str
    original: list[str]
    how: str  # placeholder, dummy, replace, pseudonym
    rule: ConceptRule | None
    where: Where


class ContentTreeCleaner:
    """Removes, or sets the values of, the content items of one object (see the module)."""

    def __init__(self, rules: CompiledRules, walker: Walker) -> None:
        self.rules = rules
        self.profile = rules.profile
        self.walker = walker  # its identity and UID remapper make pseudonyms
        self.counts: Counter[str] = Counter()
        self._held: list[_HeldBack] = []
        self._ids: dict[int, tuple[int, ...]] = {}
        self._targets: set[tuple[int, ...]] = set()

    def clean(self, ds: Dataset) -> Counter[str]:
        """Clean ``ds`` in place (call before the walker); return what was done, by kind."""
        removed: list[tuple[Dataset, Where]] = []
        ids_before = None
        if _holds_tag(ds, REFERENCED_CONTENT_ITEM):
            ids_before = self._ids = _content_ids(ds)
            self._targets = _reference_targets(ds)
        self._clean_dataset(ds, (), (), removed)
        if removed and ids_before is not None:
            _renumber_references(ds, ids_before)
        return self.counts

    def put_back(self) -> None:
        """Write the held-back values (call after the walker): placeholders, concept-rule values."""
        for held in self._held:
            value = self._released_value(held)
            if not fits(held.vr, value):
                raise ObjectError(
                    "value-does-not-fit-vr",
                    f"the {held.how} value of a content item does not fit VR {held.vr}",
                    stage="rules",
                    path=_path_text(held.where, held.tag),
                )
            held.item[held.tag] = DataElement(held.tag, held.vr, value)
        self._held.clear()

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
        if CONCEPT_NAME_CODE_SEQUENCE in item._dict and self.profile.concept_rules:
            concept = concept_of(item)
            rule = self.profile.concept_rules.get(concept) if concept else None
            if rule is not None:
                return self._apply_concept_rule(item, rule, where)
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
                if tag == TEXT_VALUE:
                    return self._remove_or_placeholder(item, where)
                return self._removable(
                    item, where, "the profile removes the value of this content item"
                )
            if tag == TEXT_VALUE and decision.action == "keep":
                return self._allow_listed(item, where)
        return False

    # -- the TEXT allow-list ------------------------------------------------------------------
    def _allow_listed(self, item: Dataset, where: Where) -> bool:
        concept = concept_of(item)
        if concept is not None and concept in self.profile.kept_text:
            return False
        if self.profile.text_not_kept == "quarantine":
            raise ObjectError(
                "content-text-not-kept",
                "a TEXT content item's concept is not in structured_content.keep_text, and "
                "structured_content.text_not_kept is quarantine: review the report, add the "
                "concept to keep_text, or set text_not_kept to remove_item",
                stage="rules",
                path=_path_text(where, TEXT_VALUE),
            )
        return self._remove_or_placeholder(item, where)

    def _remove_or_placeholder(self, item: Dataset, where: Where) -> bool:
        """Remove a TEXT item, or where it cannot go, hold its value back for the placeholder."""
        if not self._blocked(item):
            return True
        self._hold(item, TEXT_VALUE, where, "placeholder", None)
        return False

    # -- concept rules ------------------------------------------------------------------------
    def _apply_concept_rule(self, item: Dataset, rule: ConceptRule, where: Where) -> bool:
        self.counts[f"concept_{rule.action}"] += 1
        value_tag = next((tag for tag in CONTENT_VALUE_TAGS if tag in item._dict), None)
        if rule.action == "remove":
            if not self._blocked(item):
                return True
            if value_tag is None:
                why = f"the concept rule {rule.source} removes this item"
                self._not_removable(item, where, why)
            how = "placeholder" if value_tag == TEXT_VALUE else "dummy"
            self._hold(item, value_tag, where, how, rule)
            return False
        if value_tag is None:
            raise ObjectError(
                "rule-not-applicable",
                f"the concept rule {rule.source} ({rule.action}) cannot apply to a content item "
                "without a text, name, UID, date or time value; use remove",
                stage="rules",
                path=_path_text(where),
            )
        if rule.action == "pseudonym" and value_tag not in _PSEUDONYM_VALUES:
            raise ObjectError(
                "rule-not-applicable",
                f"the concept rule {rule.source} makes a pseudonym, which a "
                f"{CONTENT_VALUE_TAGS[value_tag]} value cannot hold; use dummy or remove",
                stage="rules",
                path=_path_text(where, value_tag),
            )
        self._hold(item, value_tag, where, rule.action, rule)
        return False

    def _hold(
        self, item: Dataset, tag: int, where: Where, how: str, rule: ConceptRule | None
    ) -> None:
        raw: Any = item._dict[tag]
        vr = raw.VR or vr_of(tag)
        if another_kind_of_value(tag, vr):  # a damaged tag or VR: no value of this attribute
            del item._dict[tag]  # (as the walker removes it; the release check names the damage)
            return
        original = peek(item, tag)
        del item._dict[tag]  # the walker does not see it; put_back writes the released value
        self._held.append(_HeldBack(item, tag, vr, original, how, rule, where))
        if how == "placeholder":
            self.counts["text_placeholder"] += 1

    def _released_value(self, held: _HeldBack) -> str:
        kind = CONTENT_VALUE_TAGS[held.tag]
        first = held.original[0] if held.original else ""
        if held.how == "placeholder":
            return self.profile.content_placeholder
        if held.how == "replace":
            assert held.rule is not None and held.rule.value is not None
            return held.rule.value
        if kind == "UIDREF":  # dummy or pseudonym: a UID is remapped like every UID
            return self.walker.uids.remap(first)
        if held.how == "dummy":
            return str(DUMMY[held.vr])
        rule = held.rule
        assert rule is not None
        if rule.same_as is not None:  # the pseudonym the profile gives that attribute
            same_vr = vr_of(rule.same_as)
            decision = self.rules.decide((), rule.same_as, same_vr)
            new = None
            if decision.action in ("hash", "case_number"):
                new = self.walker._new_values(rule.same_as, same_vr, [first], decision)
            if not new:
                raise ObjectError(
                    "rule-not-applicable",
                    f"the concept rule {rule.source} takes the pseudonym of "
                    f"{format_tag(rule.same_as)}, which this SOP class's rules do not give one "
                    f"({decision.action})",
                    stage="rules", path=_path_text(held.where, held.tag))
            return new[0]
        domain = f"concept:{rule.scheme}:{rule.code}"
        return self.walker.identity.hashed(domain, first, rule.length or 16)

    # -- what may go --------------------------------------------------------------------------
    def _blocked(self, item: Dataset) -> bool:
        """Whether removing the item would take measurements, coordinates or references with it,
        or leave a by-reference relationship pointing at nothing."""
        if _value_types_below(item) & KEPT_VALUE_TYPES:
            return True
        ident = self._ids.get(id(item))
        return ident is not None and any(t[: len(ident)] == ident for t in self._targets)

    def _removable(self, item: Dataset, where: Where, why: str) -> bool:
        """True; raises when the item cannot go (see :meth:`_not_removable`)."""
        if self._blocked(item):
            self._not_removable(item, where, why)
        return True

    @staticmethod
    def _not_removable(item: Dataset, where: Where, why: str) -> NoReturn:
        kept = ", ".join(sorted(_value_types_below(item) & KEPT_VALUE_TYPES))
        what = f"({kept})" if kept else "(a by-reference relationship points at it)"
        raise ObjectError(
            "content-item-not-removable",
            f"{why}, but removing it would also remove the measurements, coordinates or "
            f"references beneath it {what}: review the object",
            stage="rules",
            path=_path_text(where),
        )


def _value_types_below(item: Dataset) -> set[str]:
    kinds: set[str] = set()
    for child in _children(item):
        kinds.add(str(child.get("ValueType", "")))
        kinds |= _value_types_below(child)
    return kinds


def _children(ds: Dataset) -> list[Dataset]:
    """The items of ``ds``'s Content Sequence (none when a damaged header gave its tag another
    VR: what the walk then removes)."""
    value = ds.get(CONTENT_SEQUENCE) if CONTENT_SEQUENCE in ds._dict else None
    if not isinstance(value, DataElement) or not isinstance(value.value, Sequence):
        return []
    return [item for item in value.value if isinstance(item, Dataset)]


def _reference_targets(ds: Dataset, where: Where = ()) -> set[tuple[int, ...]]:
    """Every Referenced Content Item Identifier of the content tree."""
    found: set[tuple[int, ...]] = set()
    if REFERENCED_CONTENT_ITEM in ds._dict:
        found.add(_referenced_item(ds, where))
    for index, item in enumerate(_children(ds)):
        found |= _reference_targets(item, where + ((CONTENT_SEQUENCE, index),))
    return found


def _referenced_item(node: Dataset, where: Where) -> tuple[int, ...]:
    """The numbers of ``node``'s Referenced Content Item Identifier.  One under another VR than
    UL (a damaged header: text, or numbers read as another kind) is refused: which content item
    it points at cannot be known, so neither what must stay nor how to renumber it."""
    elem = node[REFERENCED_CONTENT_ITEM]
    if elem.VR == "UL":
        try:
            return tuple(int(v) for v in _as_list(elem.value))
        except (ValueError, TypeError):  # (pydicom: a length no whole number of values)
            pass
    raise ObjectError(
        "unreadable",
        f"a Referenced Content Item Identifier is not UL numbers (read as VR {elem.VR}): the "
        "element's header is damaged, and which content item it points at cannot be known; "
        "fetch the object again from the source",
        stage="rules",
        path=_path_text(where, REFERENCED_CONTENT_ITEM),
    )


def _holds_tag(ds: Dataset, tag: int) -> bool:
    """Whether ``tag`` is present at any depth of the content tree (only walks ContentSequence)."""
    if tag in ds._dict:
        return True
    if CONTENT_SEQUENCE not in ds._dict:
        return False
    return any(_holds_tag(item, tag) for item in _children(ds))


def _content_ids(ds: Dataset, prefix: tuple[int, ...] = (1,)) -> dict[int, tuple[int, ...]]:
    """Each content item (by object id) -> its Referenced Content Item Identifier (root = 1)."""
    ids: dict[int, tuple[int, ...]] = {id(ds): prefix}
    for number, item in enumerate(_children(ds), start=1):
        ids.update(_content_ids(item, prefix + (number,)))
    return ids


def _renumber_references(ds: Dataset, before: dict[int, tuple[int, ...]]) -> None:
    """Point by-reference relationships at the items' new positions after removals."""
    after = _content_ids(ds)
    new_id = {before[key]: value for key, value in after.items() if key in before}
    gone = {ident for key, ident in before.items() if key not in after}

    def fix(node: Dataset, where: Where) -> None:
        if REFERENCED_CONTENT_ITEM in node._dict:
            old = _referenced_item(node, where)
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
        for index, child in enumerate(_children(node)):
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
