"""De-identify one dataset: checks before the rules, the walk, then the final updaters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from deid import __version__, standard
from deid.audit.references import walked_references
from deid.engine.burned_in import at_risk, pixel_plan
from deid.engine.compiler import DECISIONS_KEPT, RULES_KEPT, CompiledRules, compile_rules
from deid.engine.content_items import ContentTreeCleaner
from deid.engine.identity import Identity, Originals
from deid.engine.pixels import describe_object
from deid.engine.review import (
    DenyList,
    HiddenTokens,
    IdentityTokens,
    TextCleaner,
    collect_identity,
    peek,
    read_when_removed,
)
from deid.engine.uids import UidRemapper
from deid.engine.vr import has_class_uid_form
from deid.engine.walker import Walker, WalkMemory
from deid.errors import ObjectError
from deid.io.datasets import made_as_init, template_of
from deid.io.reader import peek_text
from deid.io.scan import dropped as dropped_by_scan
from deid.io.scan import own_pixel_bytes
from deid.keys import SecretKey
from deid.profile.model import Profile
from deid.profile.tags import format_tag

_REQUIRED = (("SOPClassUID", 0x00080016), ("SOPInstanceUID", 0x00080018),
             ("StudyInstanceUID", 0x0020000D), ("SeriesInstanceUID", 0x0020000E))
_PATIENT_ID = 0x00100020
_REFERENCED_SERIES = 0x00081115  # Referenced Series Sequence
_OTHER_STUDIES_REFERENCED = 0x00081200  # Studies Containing Other Referenced Instances Sequence
# deid's own Implementation Class UID (0002,0012): 2.25 and the decimal of a UUID made once
# (uuid4 6de85fcf-1d47-43f0-bf5f-98a2d7b77229, PS3.5 B.2); fixed, so outputs stay deterministic.
IMPLEMENTATION_CLASS_UID = "2.25.146092407649939117375316685601554002473"
IMPLEMENTATION_VERSION = f"DEID_{__version__}"[:16]
_EXPLICIT_LITTLE = (False, True)  # Dataset.original_encoding of Explicit VR Little Endian


@dataclass
class Result:
    """What de-identification produced, in de-identified values only."""

    dataset: Dataset
    sop_class_uid: str
    modality: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    counts: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)
    applied: dict[str, str] = field(default_factory=dict)
    kept_text: dict[str, list[str]] = field(default_factory=dict)
    flagged_text: list[str] = field(default_factory=list)
    text_replaced: dict[str, int] = field(default_factory=dict)  # keyword -> identity values replaced
    tokens: HiddenTokens = field(default_factory=HiddenTokens, repr=False)  # for the encrypted map only
    originals: Originals = field(default_factory=Originals, repr=False)
    pseudonyms: dict[str, str] = field(default_factory=dict)  # released name and accession number
    references: list[dict] = field(default_factory=list)  # deid.audit.references.Reference as dicts
    pixels: dict = field(default_factory=dict)  # deid.engine.burned_in.PixelReview as a dict


class Deidentifier:
    """Applies a profile with a key (and an optional case-number lookup) to datasets."""

    def __init__(self, profile: Profile, key: SecretKey, *, lookup: Mapping[str, str] | None = None) -> None:
        self.profile = profile
        self.identity = Identity(key, lookup=lookup, case_digits=profile.case_number_digits)
        self.uids = UidRemapper(key, profile.uid_root)
        self._method_codes = _method_code_items(profile)
        self._modified = self._longitudinal()
        ascii_method = profile.method_description.isascii()
        self._raw_codes = _raw_code_items(self._method_codes) if ascii_method else None
        self._deny = DenyList(profile.deny_list) if profile.deny_list else None  # compiled once
        self._walked: dict[CompiledRules, WalkMemory] = {}  # per rules: they decide the actions

    def deidentify(self, ds: Dataset) -> Result:
        """De-identify ``ds`` in place and return it with its new identifiers."""
        for keyword, tag in _REQUIRED:
            vr = getattr(ds._dict.get(tag), "VR", None)  # (an implicit VR one: UI when read)
            if vr not in (None, "", "UI", "UN") or not peek_text(ds, tag).strip():
                what = f"has no {keyword}" if vr in (None, "", "UI", "UN") else \
                    f"holds its {keyword} under another VR than UI (a damaged header)"
                raise ObjectError("missing-identifier", f"the object {what}; it cannot be released",
                                  stage="read", path=f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        sop_class = peek_text(ds, 0x00080016).strip()
        if not has_class_uid_form(sop_class):  # kept as it came: no name, no number goes out in it
            raise ObjectError("missing-identifier", "the object's SOP Class UID is not a UID (two or "
                              "more numbers joined by dots, the first 0, 1 or 2): a damaged header "
                              "may have put another value there; it cannot be released",
                              stage="read", path="(0008,0016)")
        pixels = pixel_plan(ds, sop_class, self.profile)  # a region or OCR: from the original attributes
        if pixels is None:
            self._check_burned_in(ds, sop_class)
        patient_id = peek_text(ds, _PATIENT_ID).strip()
        originals = _originals(ds, patient_id)
        rules = compile_rules(self.profile, sop_class, keep_references=lists_references(ds))
        scanned = dropped_by_scan(ds)  # never read: not collected, not walked
        dropped, at = (scanned.tags, scanned.at) if scanned else drop_removed_private(ds, rules)
        tokens = IdentityTokens(collect_identity(ds, rules), self._deny)  # before any value changes
        review = None
        if pixels is not None:  # blanked before the walk
            own_pixel_bytes(ds)  # (the pixel modules read and write bytes)
            review = pixels.apply(ds, tokens)
        memory = self._walked.get(rules)
        if memory is None:
            if len(self._walked) >= RULES_KEPT:  # (bounded as the rules are: the oldest goes)
                del self._walked[next(iter(self._walked))]
            memory = self._walked[rules] = WalkMemory()
        walker = Walker(rules, self.identity, self.uids, patient_id, memory=memory)
        walker.dropped(dropped, at)
        content = ContentTreeCleaner(rules, walker)
        cleaned = content.clean(ds)  # SR content items, before values change
        walker.walk(ds)
        cleaner = tokens.cleaner(self.profile.text_placeholder)  # SR TEXT too: kept text, cleaned alike
        walker.clean_kept_text(cleaner, on_identity=self.profile.text_on_identity,
                               sr_text=self.profile.text_with_identity)
        content.put_back()  # the content-item values it set, which the walker does not change again
        walker.counts.update(cleaned)
        if review is not None:
            if review.cleared:  # something blanked, no text kept
                ds.BurnedInAnnotation = "NO"
            walker.counts.update(review.counts())
        pseudonyms = {"patient_name": _first(ds, 0x00100010), "accession_number": _first(ds, 0x00080050)}
        self._mark(ds)
        ds.file_meta = self._file_meta(ds, sop_class)
        if hasattr(ds, "preamble"):
            ds.preamble = b"\x00" * 128
        return Result(
            dataset=ds,
            sop_class_uid=sop_class,
            modality=peek_text(ds, 0x00080060),
            patient_id=peek_text(ds, _PATIENT_ID),
            study_uid=peek_text(ds, 0x0020000D),
            series_uid=peek_text(ds, 0x0020000E),
            sop_uid=peek_text(ds, 0x00080018),
            counts=walker.counts,
            adjusted=walker.adjusted,
            applied=_applied(walker.applied, walker.removed_unread),
            kept_text=walker.kept_text,
            flagged_text=_flagged(walker.kept_text, cleaner),
            text_replaced=dict(sorted(walker.replaced.items())),
            tokens=HiddenTokens(tokens.own),
            originals=originals,
            pseudonyms=pseudonyms,
            references=[ref.as_dict() for ref in walked_references(walker.items)],
            pixels=review.as_dict() if review is not None else {},
        )

    def private_drop(self, sop_class: str, lists_references: bool) -> Callable[[int, str], bool] | None:
        """For deid.io.scan: whether the rules for ``sop_class`` remove a top-level private element
        (tag, VR) unread (:func:`drop_removed_private`); None when none may be dropped."""
        if not sop_class:
            return None
        rules = compile_rules(self.profile, sop_class, keep_references=lists_references)
        return None if rules.safe_private else _unread_removals(rules)

    def _check_burned_in(self, ds: Dataset, sop_class: str) -> None:
        if self.profile.allow_burned_in:
            return
        if at_risk(ds, sop_class):
            raise ObjectError(
                "burned-in-annotation-risk",
                "Burned In Annotation is YES, or a Secondary Capture does not say NO: pixels may show "
                f"identity, and no pixel region of the profile matches this object ({describe_object(ds, sop_class)}); "
                "review the pixels, then add a pixels.regions entry for its device and size to the profile "
                "(deid explain lists the regions) or let pixels.ocr read it, or release it with a profile "
                "that allows it",
                stage="check", path="(0028,0301)",
            )

    def _mark(self, ds: Dataset) -> None:
        if ds.original_encoding == _EXPLICIT_LITTLE and self._raw_codes is not None:
            self._mark_raw(ds)
            return
        _put(ds, 0x00120062, "CS", "YES")  # Patient Identity Removed
        _put(ds, 0x00120063, "LO", self.profile.method_description)  # De-identification Method
        _put(ds, 0x00120064, "SQ", Sequence([_copy(item) for item in self._method_codes]))
        _put(ds, 0x00280303, "CS", self._modified)  # Longitudinal Temporal Information Modified

    def _mark_raw(self, ds: Dataset) -> None:
        """The marks of an Explicit VR Little Endian object as raw elements, encoded once per
        profile: the encoder copies them as bytes instead of encoding ~20 values per object."""
        marks = ((0x00120062, "CS", "YES"), (0x00120063, "LO", self.profile.method_description),
                 (0x00280303, "CS", self._modified))
        for tag, vr, text in marks:
            if tag in ds._dict:
                _put(ds, tag, vr, text)
            else:
                ds._dict[BaseTag(tag)] = _raw_text(tag, vr, text)
        # read as if from the file: the encoder's fast path copies raw bytes
        items = [made_as_init(Dataset, _CODE_ITEM, _dict=dict(elements))
                 for elements in self._raw_codes or ()]
        _put(ds, 0x00120064, "SQ", Sequence(items))

    def _longitudinal(self) -> str:
        """Longitudinal Temporal Information Modified, as the profile's options say."""
        options = self.profile.options
        if "retain_longitudinal_full_dates" in options:
            return "UNMODIFIED"
        if "retain_longitudinal_modified_dates" in options or "dates" in self.profile.class_rules:
            return "MODIFIED"
        return "REMOVED"

    @staticmethod
    def _file_meta(ds: Dataset, sop_class: str) -> FileMetaDataset:
        """A new file meta group: nothing of the sender's (AE titles, private information) is kept."""
        old = getattr(ds, "file_meta", None)
        elements: dict[BaseTag, DataElement] = {}  # (straight in: __setattr__ looks keywords up)
        meta = made_as_init(FileMetaDataset, _FILE_META, _dict=elements)
        for tag, vr, value in (
                (0x00020001, "OB", b"\x00\x01"),  # File Meta Information Version
                (0x00020002, "UI", sop_class),  # Media Storage SOP Class UID
                (0x00020003, "UI", peek_text(ds, 0x00080018)),  # Media Storage SOP Instance UID
                (0x00020010, "UI", old.TransferSyntaxUID),
                (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
                (0x00020013, "SH", IMPLEMENTATION_VERSION)):
            elements[BaseTag(tag)] = DataElement(tag, vr, value) if tag == 0x00020003 \
                else _shared_value_element(tag, vr, value)  # (the object's own UID: new each time)
        return meta




def _flagged(kept_text: dict[str, list[str]], cleaner: TextCleaner | None) -> list[str]:
    """The keywords whose released text still holds a token (none once cleaned: a safety net)."""
    if cleaner is None or not kept_text:
        return []
    return sorted(k for k, values in kept_text.items() if any(cleaner.clean(v)[1] for v in values))


def drop_removed_private(ds: Dataset, rules: CompiledRules) -> tuple[list[int], int]:
    """Delete the top-level private elements the rules remove and nothing reads (not a name, date,
    sequence or identity attribute, no IOD note; none with Retain Safe Private, which reads the
    creators): the CT slice's ~200 of ~330 elements, then neither collected nor walked.  Returns
    their tags and how many elements the walk meets before the first of them."""
    if rules.safe_private:
        return [], -1
    removes_unread = _unread_removals(rules)
    elements = ds._dict
    dropped: list[int] = []
    at = -1
    for index, (tag, elem) in enumerate(elements.items()):
        if not (tag >> 16) & 1:
            continue
        if removes_unread(int(tag), elem.VR):
            if not dropped:
                at = index
            dropped.append(tag)
    for tag in dropped:
        del elements[tag]
    if dropped:
        ds._private_blocks.clear()  # what Dataset.__delitem__ would have reset
    return dropped, at


@lru_cache(maxsize=RULES_KEPT)
def _unread_removals(rules: CompiledRules) -> Callable[[int, str], bool]:
    """Whether ``rules`` remove a top-level private element (tag, VR) that nothing reads: not a
    name, date, sequence or identity attribute, no IOD note (answers kept per tag and VR)."""
    known: dict[tuple[int, str], bool] = {}
    decided = rules.decided

    def removes_unread(tag: int, vr: str) -> bool:
        found = known.get((tag, vr))
        if found is None:
            if read_when_removed(tag, vr):
                found = False
            else:
                decision = decided.get(((), tag, vr)) or rules.decide((), tag, vr)
                found = decision.action == "remove" and not decision.note
            if len(known) >= DECISIONS_KEPT:
                known.clear()
            known[(tag, vr)] = found
        return found

    return removes_unread


def lists_references(ds: Dataset) -> bool:
    """True when ``ds`` lists what it references in a Common Instance Reference module."""
    return _REFERENCED_SERIES in ds or _OTHER_STUDIES_REFERENCED in ds


def _method_code_items(profile: Profile) -> list[Dataset]:
    columns = (["basic_profile"] if profile.standard_table else []) + list(profile.options)
    items = []
    for column in columns:
        code = standard.method_code(column)
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme
        item.CodeMeaning = code.meaning
        items.append(item)
    return items


def _code_item() -> Dataset:
    """A method code item as read from an Explicit VR Little Endian file, before its elements."""
    item = Dataset()
    item.set_original_encoding(False, True, item._character_set)
    return item


_CODE_ITEM = template_of(_code_item())
_FILE_META = template_of(FileMetaDataset())


def _raw_text(tag: int, vr: str, text: str) -> RawDataElement:
    """An ASCII text value as the raw Explicit VR Little Endian element pydicom would write."""
    payload = text.encode("ascii")
    if len(payload) % 2:
        payload += b" "
    return RawDataElement(BaseTag(tag), vr, len(payload), payload, 0, False, True, True, False)


def _raw_code_items(items: list[Dataset]) -> list[dict[BaseTag, RawDataElement]] | None:
    """The method code items as raw elements (immutable, shared by every object), or None when
    a value is not ASCII (then pydicom encodes them with the object's character set)."""
    raw = []
    for item in items:
        elements = {}
        for tag, elem in item._dict.items():
            value = elem.value
            if elem.VR not in ("SH", "LO") or not isinstance(value, str) or not value.isascii():
                return None
            elements[BaseTag(tag)] = _raw_text(tag, elem.VR, elem.value)
        raw.append(elements)
    return raw


def _first(ds: Dataset, tag: int) -> str:
    values = peek(ds, tag)
    return "\\".join(values)


def _originals(ds: Dataset, patient_id: str) -> Originals:
    """The identity values the re-identification map needs, read before the rules change them."""
    return Originals({
        "patient_id": patient_id,
        "patient_name": _first(ds, 0x00100010),
        "accession_number": _first(ds, 0x00080050),
        "study_uid": peek_text(ds, 0x0020000D).strip(),
        "series_uid": peek_text(ds, 0x0020000E).strip(),
        "sop_uid": peek_text(ds, 0x00080018).strip(),
    })


def _applied(applied: dict[int, str], removed_unread: bool) -> dict[str, str]:
    """Top-level tag -> action as '(gggg,eeee)' keys; private elements share the key 'private'
    (``removed_unread``: some were removed before the walk), group lengths are left out (they
    are not attributes)."""
    result: dict[str, str] = {}
    private: set[str] = {"remove"} if removed_unread else set()
    for tag, action in applied.items():
        tag = int(tag)  # (a pydicom BaseTag runs its __eq__ in Python on every dict hit)
        if tag >> 16 & 1:
            private.add(action)
        elif tag & 0xFFFF:
            result[_tag_key(tag)] = action
    if private:
        result["private"] = "/".join(sorted(private))
    return result


_TAG_KEYS: dict[int, str] = {}


def _tag_key(tag: int) -> str:
    key = _TAG_KEYS.get(tag)
    if key is None:
        key = _TAG_KEYS[tag] = format_tag(tag)
    return key


_ELEMENTS: dict[tuple[int, str, object, int], dict[str, object]] = {}


def _shared_value_element(tag: int, vr: str, value: object) -> DataElement:
    """``DataElement(tag, vr, value)`` as its ``__init__`` leaves it, for a value shared by many
    objects (a SOP class, a transfer syntax, a constant): a new element with the attributes of
    one made once (its value immutable: a UID, a str, bytes), without the value's conversion and
    validation (~3 us an element).  Kept per value and validation mode, which __init__ reads."""
    key = (tag, vr, value, config.settings.reading_validation_mode)
    state = _ELEMENTS.get(key)
    if state is None:
        made = DataElement(tag, vr, value)
        if type(made.value) not in (UID, str, bytes):  # (several values: a list, not shared)
            return made
        if len(_ELEMENTS) >= 256:  # (SOP classes x transfer syntaxes: a handful in practice;
            _ELEMENTS.clear()  # one call, as the worker threads of a node share this module)
        state = _ELEMENTS[key] = dict(made.__dict__)
    made = object.__new__(DataElement)
    made.__dict__.update(state)
    return made


def _copy(item: Dataset) -> Dataset:
    """A new item holding the same (never changed) elements: Dataset.update would set each one
    through Dataset.__setitem__, which costs more than the item itself."""
    return Dataset(dict(item._dict))


def _put(ds: Dataset, tag: int, vr: str, value: object) -> None:
    """``ds.<keyword> = value`` for a standard attribute of VR ``vr``, straight into the element
    dict (Dataset.__setattr__ looks the keyword up on every call); an element the object already
    has is changed the way __setattr__ changes it, keeping its VR, unless the input gave it
    another VR (a damaged header: Patient Identity Removed as IS cannot hold "YES"), which deid's
    own value does not keep."""
    current = ds._dict.get(tag)
    if current is not None and current.VR in (None, "", "UN", vr):
        ds[tag].value = value
        return
    key = BaseTag(tag)
    ds._dict[key] = DataElement(key, vr, value)
