"""Walk a dataset at every depth and apply the compiled decision to each element.

Elements the rules keep are left as pydicom read them (raw bytes), so they are written back
without being decoded or re-encoded; Pixel Data in particular is never decoded.  Kept free text
(``deid.engine.review.is_cleaned_text``) is noted during the walk and cleaned after it
(:meth:`Walker.clean_kept_text`), when every identity value of the object is known.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from operator import attrgetter
from operator import index as plain_int
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.tag import BaseTag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from deid.engine.compiler import CompiledRules, Decision
from deid.engine.dates import DateFormError, generalise_da, generalise_dt
from deid.engine.identity import Identity
from deid.engine.review import (
    KEPT_TEXT,
    TEXT_VALUE,
    TextCleaner,
    cleaned_text_name,
    is_cleaned_text,
    peek,
)
from deid.engine.uids import UidRemapper
from deid.engine.vr import DUMMY, STRING_VRS, fits, max_chars, vr_of
from deid.errors import ObjectError, attach_path
from deid.io.reader import charset_of
from deid.io.text import raw_strings
from deid.profile.model import Label
from deid.profile.tags import format_tag

_UNDEFINED = 0xFFFFFFFF  # an element's undefined length (a sequence's, or UN's)

_ASCII_VRS = frozenset({"UI", "DA", "DT"})
_VR = attrgetter("VR")
_new_raw = tuple.__new__

Where = tuple[tuple[int, int], ...]  # (sequence tag, item index) pairs from the top


def _refuse_cut_short(item: Dataset, where: Where) -> None:
    """``unreadable`` for an element of ``item`` whose length runs past the end of the item or
    sequence holding it: pydicom's reading cuts its value there, so it holds the headers and
    values of the elements after it (a damaged header: a UI read as UN takes four bytes of its
    value as its length), which would go out unread, or be lost under a rule's new value."""
    for tag, elem in item._dict.items():
        if type(elem) is RawDataElement and elem.length != _UNDEFINED \
                and elem.value is not None and len(elem.value) != elem.length:
            raise ObjectError(
                "unreadable", "an element's length runs past the end of the item or sequence "
                "holding it, as when a damaged length makes it swallow the elements after it; "
                "fetch the object again from the source", stage="read",
                path=element_path(where, tag))


def element_path(where: Where, tag: int) -> str:
    """'(0040,0275)[0].(0010,0020)': tags and item numbers only, never a value."""
    return "".join(f"{format_tag(t)}[{i}]." for t, i in where) + format_tag(tag)


class _Bounded:
    """A dict of at most ``size`` entries: the oldest goes first (an object's own UIDs, and its
    layout when it differs from its series', are new every time)."""

    def __init__(self, size: int) -> None:
        self._known: dict[Any, Any] = {}
        self._size = size
        self.get = self._known.get

    def put(self, key: Any, value: Any) -> None:
        known = self._known
        known[key] = value
        if len(known) > self._size:
            del known[next(iter(known))]


# What the walk does with the elements of one data set (see WalkMemory.plans): for each element
# that needs more than a count of keep, (its index, how many plain keeps come before it since the
# last such element, its decision, its VR); then how many plain keeps end the data set, and the
# error deciding an element raised (a bug: the walk raises it where it was; never remembered).
Plan = tuple[list[tuple[int, int, Decision, str]], int, Exception | None]


class WalkMemory:
    """What the walks of one Deidentifier with one CompiledRules (they decide every action) learn
    once for the objects of a series, which share their layout and most of their values.

    ``values``: the new raw elements (immutable tuples, shared) of the string elements the rules
    changed, by what they are made from: where the element sits, its tag, VR, bytes and encoding,
    the data set's character set (text VRs) and, for a case number, the patient.  Every action
    is a function of these alone (a keyed hash, UID or date of the same value, a constant):
    ~3-6 us an element, some 25 per CT slice.  Only values read from their bytes
    (deid.io.text) are kept; a value that fails is raised each time, never kept.

    ``plans``: a data set's :data:`Plan`, by where it sits and its layout (every element's tag and
    VR, which with the rules decide every action; the Retain Safe Private elements it keeps; where
    the dropped private elements were): the walk then visits only the elements that need more
    than a count of keep (a CT slice: ~75 of ~150)."""

    VALUES = 1024  # ~0.7 KB each: a series' ~25 values stay while its slices' own UIDs pass
    PLANS = 64  # ~10 KB each for a CT slice's data set (a series' few layouts, at most)

    def __init__(self) -> None:
        self.values = _Bounded(self.VALUES)
        self.plans = _Bounded(self.PLANS)


class Walker:
    """Applies decisions to one object; collects how often each action was applied."""

    def __init__(self, rules: CompiledRules, identity: Identity, uids: UidRemapper,
                 patient_id: str, *, memory: WalkMemory | None = None) -> None:
        self.rules = rules
        self.identity = identity
        self.uids = uids
        self.patient_id = patient_id
        self.counts: Counter[str] = Counter()
        self.adjusted: Counter[str] = Counter()
        self.applied: dict[int, str] = {}  # top-level tag -> action, for every action but keep
        # (but the private elements dropped unread: all removed, see removed_unread)
        self.kept_text: dict[str, list[str]] = {}  # KEPT_TEXT keyword -> distinct kept values
        self.replaced: Counter[str] = Counter()  # keyword (or tag) -> identity values replaced
        self._kept: list[tuple[Dataset, int, Where]] = []  # kept free text, cleaned after the walk
        self.items: list[tuple[Dataset, Where]] = []  # every dataset walked, in order (for references)
        self._case_number: str | None = None
        self.labels = rules.profile.labels  # tag -> Label kept in that attribute's pseudonym
        self._dropped: list[int] = []  # top-level elements removed before the walk (drop_removed)
        self._dropped_at = -1  # how many top-level elements the walk meets before the first of them
        memory = memory if memory is not None else WalkMemory()
        self._values = memory.values
        self._plans = memory.plans

    def dropped(self, tags: list[int], at: int) -> None:
        """Top-level elements the rules remove, dropped before the walk (unread): counted and noted
        as the walk counts a removal, the first one after ``at`` elements (so the counts' order
        is the same)."""
        self._dropped = tags
        self._dropped_at = at if tags else -1

    @property
    def removed_unread(self) -> bool:
        """Whether top-level private elements were removed before the walk (unread)."""
        return bool(self._dropped)

    def walk(self, ds: Dataset, path: tuple[int, ...] = (), where: Where = ()) -> None:
        self._walk(ds, path, where)
        if not path and self._dropped:  # (removed private elements: see removed_unread)
            self.counts["remove"] += len(self._dropped)

    def _walk(self, ds: Dataset, path: tuple[int, ...], where: Where) -> None:
        counts = self.counts
        self.items.append((ds, where))
        elements = ds._dict
        applied = None if path else self.applied
        removed = False
        # Retain Safe Private: the safe private elements of this dataset, by its own creators
        kept_private = self.rules.kept_private(ds) if self.rules.safe_private else None
        mark = self._dropped_at if not path else -1
        keys, values = list(elements), list(elements.values())
        # plain ints (operator.index: int() copies a BaseTag at twice its cost), not BaseTags:
        # comparing two BaseTags that are not the same object runs their __eq__ in Python
        layout = (path, mark, tuple(map(plain_int, keys)), tuple(map(_VR, values)),
                  tuple(map(plain_int, kept_private)) if kept_private else None)
        steps, keeps_after, failed = self._plans.get(layout) or \
            self._plan(layout, keys, values, where, kept_private)
        tag = None
        try:
            for index, keeps, decision, vr in steps:
                if keeps:  # the plain keeps before this element (nothing else counted since)
                    counts["keep"] += keeps
                tag = keys[index]
                if index == mark:  # where the first dropped element was: its count's place
                    counts["remove"] += 0  # (each is counted after the walk, as walk() does)
                action = decision.action
                counts[action] += 1
                if decision.note:
                    self.adjusted[decision.note] += 1
                if action == "keep" or (action == "dummy" and vr == "SQ"):
                    if vr == "SQ":
                        self._walk_sequence(ds, tag, path, where)
                    elif is_cleaned_text(tag, vr):
                        self._kept.append((ds, tag, where))
                    continue
                if applied is not None:
                    applied[tag] = action
                if action == "remove":
                    # straight from the element dict: Dataset.__delitem__ costs ~10x more
                    del elements[tag]
                    removed = True
                    continue
                try:
                    self._apply(ds, tag, vr, values[index], decision, path)
                except ObjectError as exc:
                    exc.path = exc.path or element_path(where, tag)
                    raise
                except (DateFormError, ValueError, TypeError, KeyError) as exc:
                    raise ObjectError(
                        "rule-not-applicable",
                        f"the {action} rule cannot be applied to this {vr} value "
                        f"({exc.__class__.__name__})",
                        stage="rules",
                        path=element_path(where, tag),
                    ) from None
            if failed is not None:  # after the elements before it, as a walk deciding each
                raise failed
        except Exception as exc:  # a bug: the pipeline's internal-error reason names the element
            if not isinstance(exc, ObjectError) and tag is not None:
                attach_path(exc, element_path(where, tag))  # (the innermost walk's, first)
            raise
        if keeps_after:
            counts["keep"] += keeps_after
        if removed:
            ds._private_blocks.clear()  # what Dataset.__delitem__ would have reset

    def _plan(self, layout: tuple[Any, ...], keys: list[Any], values: list[Any], where: Where,
              kept_private: dict[int, Decision] | None) -> Plan:
        """The :data:`Plan` of a data set of this layout (remembered in self._plans): every
        element's decision; those that are only counted (a keep of no sequence, no cleaned text,
        no note, not where the dropped elements were) are left out, counted in a number."""
        path, mark = layout[0], layout[1]
        decide = self.rules.decide
        decided = self.rules.decided  # the cache decide fills: looked up here without a call
        steps: list[tuple[int, int, Decision, str]] = []
        keeps = 0
        tag = None
        try:
            for index, (tag, raw) in enumerate(zip(keys, values)):
                vr = raw.VR
                if not vr or vr == "UN":
                    known = vr_of(tag)
                    vr = known if known != "UN" or not vr else vr
                # a plain int in the key: comparing pydicom's BaseTag runs its __eq__ in Python
                decision = (kept_private.get(tag) if kept_private else None) or \
                    decided.get((path, int(tag), vr)) or decide(path, int(tag), vr)
                if decision.action == "keep" and vr != "SQ" and not decision.note \
                        and index != mark and not is_cleaned_text(tag, vr):
                    keeps += 1
                    continue
                steps.append((index, keeps, decision, vr))
                keeps = 0
        except Exception as exc:  # a bug: the pipeline's internal-error reason names the element
            if not isinstance(exc, ObjectError) and tag is not None:
                attach_path(exc, element_path(where, tag))
            return steps, keeps, exc
        plan = (steps, keeps, None)
        self._plans.put(layout, plan)
        return plan

    def _walk_sequence(self, ds: Dataset, tag: int, path: tuple[int, ...], where: Where) -> None:
        value = ds[tag].value
        if not isinstance(value, Sequence):
            return
        for index, item in enumerate(value):
            _refuse_cut_short(item, where + ((tag, index),))
            self.walk(item, path + (int(tag),), where + ((tag, index),))

    def clean_kept_text(self, cleaner: TextCleaner | None, *, on_identity: str, sr_text: str) -> None:
        """After the walk: replace the identity tokens found in kept free text (or quarantine the
        object, as the profile says: ``on_identity`` for free text, ``sr_text`` for SR TEXT values),
        then collect the released values for the review."""
        for ds, tag, where in self._kept:
            try:
                values = peek(ds, tag)
            except (ValueError, TypeError, LookupError):  # undecodable text: kept as is, not collected
                continue
            if values and cleaner is not None:
                values = self._clean(ds, tag, where, values, cleaner,
                                     sr_text if tag == TEXT_VALUE else on_identity)
            keyword = KEPT_TEXT.get(tag)
            if values and keyword is not None:
                seen = self.kept_text.setdefault(keyword, [])
                for value in values:
                    if value not in seen:
                        seen.append(value)

    def _clean(self, ds: Dataset, tag: int, where: Where, values: list[str], cleaner: TextCleaner,
               policy: str) -> list[str]:
        cleaned = [cleaner.clean(v) for v in values]
        count = sum(n for _, n in cleaned)
        if not count:
            return values
        if policy == "quarantine":
            field = "structured_content.text_with_identity" if tag == TEXT_VALUE else "free_text.on_identity"
            raise ObjectError(
                "text-contains-identity",
                "kept free text contains an identity value of the object (a name, ID, date, "
                f"institution or address the profile removes) or of the deny-list, and {field} is "
                "quarantine: review the text at the element path, or set it to replace",
                stage="rules", path=element_path(where, tag))
        elem = ds[tag]
        vr = elem.VR if elem.VR and elem.VR != "UN" else vr_of(tag)
        new = [cleaner.fit(vr, text) for text, _ in cleaned]
        try:
            elem.value = new[0] if len(new) == 1 else new
        except (ValueError, TypeError, OverflowError):  # (pydicom: not a value of that VR)
            raise ObjectError(
                "unreadable", f"kept text holds an identity value the rules replace, but its "
                f"element's VR {vr} (its attribute's is {vr_of(tag)}) cannot hold the replacement: "
                "the element's header is damaged; fetch the object again from the source",
                stage="rules", path=element_path(where, tag)) from None
        self.replaced[cleaned_text_name(tag)] += count
        return [v for v in new if v]

    # -- actions on one element ------------------------------------------------------------
    def _apply(self, ds: Dataset, tag: int, vr: str, raw: Any, decision: Decision,
               path: tuple[int, ...]) -> None:
        """Compute the new values, then store them: as raw bytes when they are ASCII and the element
        was still raw (written without pydicom's encoder), else through the pydicom element."""
        action = decision.action
        if vr == "SQ" or vr not in STRING_VRS:  # empty/dummy of a sequence or a binary value
            elem = ds[tag]
            if action == "empty":
                elem.value = Sequence() if vr == "SQ" else None
            else:
                elem.value = DUMMY.get(vr, b"")
            return
        is_raw = getattr(raw, "is_raw", False)
        known = None  # the key of the new element in self._values (see WalkMemory)
        # (the values of UI, DA and DT are read from the bytes whatever VR the element was read
        # with, implicit VR's None or UN too; a text VR's only when it was read as that VR)
        if type(raw) is RawDataElement and type(raw.value) is bytes \
                and (vr in _ASCII_VRS or raw.VR == vr):
            charset = None if vr in _ASCII_VRS else charset_of(ds)
            if type(charset) is list:
                charset = tuple(charset)
            patient = self.patient_id if action == "case_number" else None
            known = (path, int(tag), vr, raw.value, charset, patient, raw.is_implicit_VR,
                     raw.is_little_endian)
            element = self._values.get(known)
            if element is not None:
                ds._dict[tag] = element  # (a RawDataElement is an immutable tuple: shared)
                return
        if is_raw and vr in _ASCII_VRS:
            text = (raw.value or b"").decode("ascii").rstrip("\x00 ")
            old = [v.strip() for v in text.split("\\")] if text else []
        else:
            # plain ASCII read from the bytes as pydicom reads them (deid.io.text); else through
            # pydicom (text VRs need the character set to read the original)
            fast = raw_strings(raw, vr, charset_of(ds)) \
                if type(raw) is RawDataElement and raw.VR == vr else None
            if fast is None:  # read by pydicom: not kept (it reads more than the bytes)
                known = None
            old = fast if fast is not None else self._element_values(ds[tag])
        new = self._new_values(tag, vr, old, decision)
        if new is None:
            return
        for v in new:
            if not fits(vr, v):
                raise ObjectError("value-does-not-fit-vr", f"the {action} value does not fit VR {vr}", stage="rules")
        if is_raw and all(map(str.isascii, new)):
            payload = "\\".join(new).encode("ascii")
            if len(payload) % 2:
                payload += b"\x00" if vr == "UI" else b" "
            element = _new_raw(RawDataElement, (  # (RawDataElement(...) without its __new__)
                BaseTag(tag), vr, len(payload), payload, 0, raw.is_implicit_VR,
                raw.is_little_endian, True, False))
            if known is not None:
                self._values.put(known, element)
            ds._dict[tag] = element
        else:
            ds[tag].value = new[0] if len(new) == 1 else (new or "")

    def _new_values(self, tag: int, vr: str, old: list[str], decision: Decision) -> list[str] | None:
        """The element's new values for a string VR; None leaves it as it is."""
        action = decision.action
        if action == "empty":
            return []
        if action == "dummy":
            return [str(DUMMY[vr])]
        if action == "replace":
            return [str(decision.value)]
        if action == "remap_uid":
            return [self.uids.remap(v) for v in old]
        if action == "generalise_date":
            fn = generalise_da if vr == "DA" else generalise_dt
            return [fn(v) for v in old]
        if action == "hash":
            length = min(decision.length or 32, max_chars(vr) or 64)
            upper = vr in ("CS", "AE")
            label = self.labels.get(tag)
            if label is not None:
                domain = format_tag(tag)

                def hashed(value: str) -> Callable[[int], str]:
                    return lambda n: self.identity.hashed(domain, value, n, upper=upper)

                return [self._labelled(label, v, length, upper, hashed(v)) for v in old]
            return [self.identity.hashed(format_tag(tag), v, length, upper=upper) for v in old]
        if action == "case_number":
            if not old:
                return None
            if self._case_number is None:
                self._case_number = self.identity.case_number(self.patient_id)
            label = self.labels.get(tag)
            if label is not None:
                case = self._case_number
                return [self._labelled(label, old[0], max_chars(vr) or 64, False, lambda n: case[:n])]
            return [self._case_number]
        raise ValueError(f"unknown action {action}")

    @staticmethod
    def _labelled(label: Label, value: str, length: int, upper: bool, pseudonym: Callable[[int], str]) -> str:
        """``<label><separator><pseudonym>`` in ``length`` characters; the label is the pattern's group."""
        if not value:
            return value
        match = label.pattern.search(value)
        found = match.group(1) if match is not None else None
        if not found:
            if label.on_mismatch == "hash":
                return pseudonym(length)
            raise ObjectError(
                "label-not-found", "the value does not match the label pattern of the profile "
                "(pseudonym.labels), so its label cannot be kept; correct the value at the source, widen "
                "the pattern, or set on_mismatch: hash", stage="rules")
        prefix = (found + label.separator).upper() if upper else found + label.separator
        room = length - len(prefix)
        if room < 8:
            raise ObjectError(
                "label-too-long", "the label leaves fewer than 8 characters for the pseudonym within the "
                "rule's length and the VR; make the pattern's group shorter or the rule's length longer",
                stage="rules")
        return prefix + pseudonym(room)

    @staticmethod
    def _element_values(elem: DataElement) -> list[str]:
        value: Any = elem.value
        if value is None or value == "":
            return []
        if isinstance(value, (MultiValue, list, tuple)):
            return [str(v) for v in value]
        return [str(value)]
