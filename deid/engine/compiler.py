"""Which action applies to an element: the one place where rule precedence lives.

    SOP-class + tag rule  >  tag rule  >  class rule  >  base profile (PS3.15 table + options)  >  keep

then the IOD guard: a removal of a Type 1 attribute becomes a dummy value, of a Type 2 attribute an
empty value, so de-identification never breaks the object's IOD. The value of an SR content item
(Text Value, Person Name, UID, Date, Time, DateTime inside a sequence) is required by its item:
removing or emptying it becomes ``remove_item`` or ``quarantine`` (the profile's
``structured_content.value_removed``), carried out by ``deid.engine.content_items``.  Text Value
has no row in PS3.15 Table E.1-1 (the standard handles it through Content Sequence): with the
Clean Structured Content option it is kept for the concepts the profile's keep_text names (the
allow-list is applied by ``deid.engine.content_items``, as are concept rules, which come before
these element rules), without it, it is removed.  Decisions are cached per (path, tag, VR):
after the first file of a SOP class, deciding costs one dictionary look-up.

With the Retain Safe Private option a private element listed as safe (PS3.15 Table E.3.10-1, or
the profile's safe_private) is kept, with its Private Creator, before every other rule.  Which
element that is depends on the creators of the dataset it sits in (the block number differs from
object to object), so it is decided per dataset by :meth:`CompiledRules.kept_private`, never by
group and element alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from pydicom.datadict import DicomDictionary, mask_match

from deid import standard
from deid.engine.content_items import CONTENT_VALUE_TAGS, TEXT_VALUE
from deid.engine.uids import CLASS_UID_TAGS
from deid.engine.vr import DATE_VRS, another_kind_of_value
from deid.io.reader import peek_text
from deid.profile.model import Profile, Rule
from deid.profile.tags import tag_name

GROUP_LENGTH = "group-length"


@dataclass(frozen=True)
class Decision:
    """The concrete action for one element, with the rule it came from and any IOD adjustment."""

    action: str  # keep, remove, empty, dummy, replace, hash, case_number, generalise_date, remap_uid,
    #              remove_item / quarantine (an SR content item's value: see content_items)
    source: str
    value: str | None = None
    length: int | None = None
    note: str = ""

    def describe(self) -> str:
        text = self.action
        if self.action == "replace":
            text += f" {self.value!r}"
        elif self.length is not None:
            text += f" ({self.length})"
        return text


KEEP_DEFAULT = Decision("keep", "default: not listed")
#: what a process keeps of what its inputs bring, however many distinct ones a long-lived node
#: meets (a hostile peer can make up any number of SOP classes and tags): rules compiled per SOP
#: class, and decisions per (path, tag, VR) in one compiled rules (forgotten all at once when full)
RULES_KEPT = 256
DECISIONS_KEPT = 1 << 16
#: a public tag no attribute of the DICOM dictionary has (nor an item or delimiter tag, read as an
#: element): nothing says what it holds, so it is not kept (a damaged header can move a name there)
NOT_AN_ATTRIBUTE = Decision("remove", "not a DICOM attribute (no entry in the data dictionary): X")
#: a command or file meta element inside an item: no attribute of a data set (a damaged tag)
NOT_IN_ITEMS = Decision("remove", "a command or file meta element inside an item: X")
#: a media directory's element (group 0004: a DICOMDIR's records) in an object: no attribute of an
#: image, report or structure set; its Referenced File ID is a path, often named after the patient
DIRECTORY_ELEMENT = Decision("remove", "a media directory (DICOMDIR) element, group 0004: X")
#: an element whose VR holds another kind of value than its attribute's: not kept as that attribute
NOT_THIS_ATTRIBUTE = Decision("remove",
                              "a VR of another kind than its attribute's (a damaged tag): X")


_REPEATING_GROUPS = frozenset({0x50, 0x60, 0x7F})  # curves, overlays, variable pixel data


@lru_cache(maxsize=1 << 16)  # (bounded: the tags are the input's, any a hostile file holds)
def _is_attribute(tag: int) -> bool:
    """Whether a public tag is an attribute of the DICOM dictionary (repeating groups included,
    within their range: the even groups xx00-xx1E of curves 50xx, overlays 60xx and 7Fxx, PS3.5
    7.6; pydicom's dictionary matches any xx, so (60CE,0022) would read as an Overlay Description)."""
    if tag >> 16 == 0xFFFE:
        return False
    if tag in DicomDictionary:
        return True
    mask = mask_match(tag)
    if mask is None:
        return False
    group = tag >> 16
    if group >> 8 in _REPEATING_GROUPS:
        return group % 2 == 0 and group & 0xFF <= 0x1E
    return True


def _is_overlay(group: int) -> bool:
    return 0x6000 <= group <= 0x601E and group % 2 == 0


def _is_curve(group: int) -> bool:
    return 0x5000 <= group <= 0x501E and group % 2 == 0


class CompiledRules:
    """A profile compiled for one SOP class.

    ``keep_references``: the object lists the instances it references in its Common Instance
    Reference module (Referenced Series Sequence); then removing a reference sequence coded
    X/Z/U* would break that module's condition, so such sequences are kept with their UIDs
    remapped (the U the code allows "to maintain IOD conformance").
    """

    def __init__(self, profile: Profile, sop_class_uid: str, keep_references: bool = False) -> None:
        self.profile = profile
        self.sop_class_uid = sop_class_uid
        self.keep_references = keep_references
        self._sop_rules = profile.sop_class_rules.get(sop_class_uid, {})
        # (creator, group, element byte) -> (VR, where it is listed): Retain Safe Private, or empty
        self.safe_private = _safe_private(profile)
        # (path, tag, VR) -> decision, filled by decide; read directly by the walker's hot loop
        self.decided: dict[tuple[tuple[int, ...], int, str], Decision] = {}

    def decide(self, path: tuple[int, ...], tag: int, vr: str) -> Decision:
        key = (path, tag, vr)
        found = self.decided.get(key)
        if found is None:
            if len(self.decided) >= DECISIONS_KEPT:
                self.decided.clear()  # (in place: the walker holds the dict itself)
            found = self.decided[key] = self._decide(path, tag, vr)
        return found

    def kept_private(self, ds: Any) -> dict[int, Decision]:
        """The private elements of ``ds`` (one dataset, not its items) that the Retain Safe Private
        option keeps, and the Private Creators of their blocks: tag -> keep decision. An element
        whose explicit VR is not the one the list gives is not the listed attribute: not kept."""
        safe = self.safe_private
        if not safe:
            return {}
        elements = ds._dict
        creators: dict[tuple[int, int], str] = {}
        for tag in elements:
            if (tag >> 16) & 1 and 0x10 <= tag & 0xFFFF <= 0xFF:
                creators[(tag >> 16, tag & 0xFF)] = peek_text(ds, tag).strip(" \x00")
        kept: dict[int, Decision] = {}
        for tag, raw in elements.items():
            group, element = tag >> 16, tag & 0xFFFF
            if not group & 1 or element < 0x1000:
                continue
            creator = creators.get((group, element >> 8))
            listed = safe.get((creator, group, element & 0xFF)) if creator else None
            if listed is None:
                continue
            vr, source = listed
            if raw.VR and raw.VR != "UN" and vr and raw.VR not in vr.split("/"):
                continue
            kept[tag] = Decision("keep", source)
            creator_tag = (group << 16) | (element >> 8)
            if creator_tag not in kept:
                kept[creator_tag] = Decision("keep", f"private creator of kept {creator} elements")
        return kept

    # -- precedence -------------------------------------------------------------------------
    def _decide(self, path: tuple[int, ...], tag: int, vr: str) -> Decision:
        if tag & 0xFFFF == 0 and tag >> 16 != 0x0002:
            return Decision("remove", GROUP_LENGTH)
        if path and tag >> 16 in (0x0000, 0x0002):
            return NOT_IN_ITEMS
        rule = self._sop_rules.get(tag) or self.profile.tag_rules.get(tag) or self._class_rule(tag, vr)
        group = tag >> 16
        if group == 0x0004 and rule is None:
            return DIRECTORY_ELEMENT
        if rule is None and self.profile.standard_table and (_is_overlay(group) or _is_curve(group)):
            # E.1-1 removes Overlay Data and every curve element; an Overlay Plane left without
            # its data is an incomplete module, so the whole group goes (a module, not a Type 1 value).
            return Decision("remove", "ps3.15 overlay/curve group: X (whole group)")
        if rule is not None:
            decision = self._from_rule(rule, vr)
            if rule.action == "remove" and rule.source.endswith(("classes.private", "classes.overlays", "classes.curves")):
                return decision  # a whole private block or module goes: no IOD guard
        elif self.profile.standard_table and tag == TEXT_VALUE and path:
            decision = self._text_value()
        elif self.profile.standard_table:
            decision = self._from_standard(path, tag, vr)
        else:
            decision = KEEP_DEFAULT
        # no IOD guard for these: a dummy would keep the foreign VR; without the attribute the
        # release check refuses an object that needs it (iod-check-failed, with its path)
        if decision is NOT_AN_ATTRIBUTE:
            return decision
        if decision.action == "keep" and another_kind_of_value(tag, vr):
            return NOT_THIS_ATTRIBUTE
        return self._guard(decision, path, tag, vr)

    def _class_rule(self, tag: int, vr: str) -> Rule | None:
        group = tag >> 16
        classes = self.profile.class_rules
        if group % 2 == 1:
            return classes.get("private")
        if _is_overlay(group):
            return classes.get("overlays")
        if _is_curve(group):
            return classes.get("curves")
        if vr == "UI" and tag not in CLASS_UID_TAGS:
            return classes.get("instance_uids")
        if vr in DATE_VRS:
            return classes.get("dates")
        return None

    @staticmethod
    def _from_rule(rule: Rule, vr: str) -> Decision:
        action = rule.action
        if action == "pseudonym":
            action = {"PN": "case_number", "UI": "remap_uid"}.get(vr, "hash")
        if action == "dummy" and vr == "UI":
            action = "remap_uid"
        return Decision(action, rule.source, rule.value, rule.length)

    def _from_standard(self, path: tuple[int, ...], tag: int, vr: str) -> Decision:
        if (tag >> 16) % 2 == 1:
            code, row_label = "X", "private attribute"
            options_used: list[str] = []
        else:
            row = standard.row_for_tag(tag)
            if row is None:
                return KEEP_DEFAULT if _is_attribute(tag) else NOT_AN_ATTRIBUTE
            code, row_label = row.basic, row.keyword or row.name
            options_used = [o for o in self.profile.options if row.options.get(o)]
            option_codes = [row.options[o] for o in options_used]
            if "K" in option_codes:
                code = "K"
            elif "C" in option_codes:
                code = "C" if (vr in DATE_VRS or vr in ("TM", "SQ")) else code
        source = f"ps3.15 {row_label}: {code}" + (f" ({', '.join(options_used)})" if options_used else "")
        return self._from_code(code, source, path, tag, vr)

    def _text_value(self) -> Decision:
        """Text Value of a content item: no E.1-1 row; it follows Content Sequence's row."""
        if "clean_structured_content" in self.profile.options:
            return Decision("keep", "ps3.15 ContentSequence: C (clean_structured_content): "
                                    "TEXT kept for the concepts of structured_content.keep_text")
        return Decision("remove", "ps3.15 ContentSequence: D: TEXT values do not stay")

    def _from_code(self, code: str, source: str, path: tuple[int, ...], tag: int, vr: str) -> Decision:
        if code == "K":
            return Decision("keep", source)
        if code == "C":  # clean: dates are generalised; times carry no date and are kept;
            # a sequence is kept and every item in it cleaned by the rules (SR content items too)
            return Decision("generalise_date" if vr in DATE_VRS else "keep", source)
        if code == "U" or (code == "D" and vr == "UI"):
            return Decision("remap_uid" if vr == "UI" else "keep", source)
        level = standard.required_level(self.sop_class_uid, path, tag)
        simple = {"X": "remove", "Z": "empty", "D": "dummy"}
        if code in simple:
            return Decision(simple[code], source)
        # compound codes resolve from the attribute's Type in this IOD
        if code.endswith("U*") and vr == "SQ" and self.keep_references:
            return Decision("keep", f"{source} -> U: references listed in Common Instance Reference")
        choices = code.rstrip("*").split("/")
        if level == 1 and ("D" in choices or "U" in choices):
            action = "remap_uid" if vr == "UI" else ("keep" if vr == "SQ" else "dummy")
        elif level <= 2 and "Z" in choices:
            action = "empty"
        elif "X" in choices:
            action = "remove"
        else:
            action = "empty" if "Z" in choices else "dummy"
        return Decision(action, f"{source} -> Type {level}")

    # -- IOD guard --------------------------------------------------------------------------
    def _guard(self, decision: Decision, path: tuple[int, ...], tag: int, vr: str) -> Decision:
        if decision.action not in ("remove", "empty") or decision.source == GROUP_LENGTH:
            return decision
        if path and tag in CONTENT_VALUE_TAGS:
            action = self.profile.content_value_removed
            kind = CONTENT_VALUE_TAGS[tag]
            return Decision(action, decision.source,
                            note=f"{decision.action} -> {action}: a {kind} content item needs its value (Type 1C)")
        level = standard.required_level(self.sop_class_uid, path, tag)
        iod = standard.iod_for_sop_class(self.sop_class_uid) or "IOD"
        iod = f"{iod} at {tag_name(tag)}"
        if level == 1:
            if vr == "SQ":
                return Decision("keep", decision.source, note=f"{decision.action} -> keep: Type 1 sequence in {iod}")
            action = "remap_uid" if vr == "UI" else "dummy"
            return Decision(action, decision.source, note=f"{decision.action} -> {action}: Type 1 in {iod}")
        if level == 2 and decision.action == "remove":
            return Decision("empty", decision.source, note=f"remove -> empty: Type 2 in {iod}")
        return decision


@cache
def _safe_private(profile: Profile) -> dict[tuple[str, int, int], tuple[str, str]]:
    """What the Retain Safe Private option keeps: (creator, group, element byte) -> (VR, source)."""
    if "retain_safe_private" not in profile.options:
        return {}
    edition = standard.safe_private_edition()
    kept = {row.key: (row.vr, f"ps3.15 E.3.10-1 safe private {row.describe()} (retain_safe_private, {edition})")
            for row in standard.safe_private_rows()}
    for rule in profile.safe_private:
        kept.setdefault(rule.key, ("", f"{rule.source}: safe private {rule.describe()}"))
    return kept


@lru_cache(maxsize=RULES_KEPT)
def _compiled(profile: Profile, sop_class_uid: str, keep_references: bool) -> CompiledRules:
    return CompiledRules(profile, sop_class_uid, keep_references)


def compile_rules(profile: Profile, sop_class_uid: str, *, keep_references: bool = False) -> CompiledRules:
    """The compiled rules of a profile for a SOP class (one instance per pair, per process, for the
    last :data:`RULES_KEPT` pairs);
    ``keep_references`` as in :class:`CompiledRules`."""
    return _compiled(profile, sop_class_uid, keep_references)
