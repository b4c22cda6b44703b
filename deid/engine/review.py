"""Kept free text: the identity values it must not carry, how they are found, and what a person reviews.

``KEPT_TEXT`` is the fixed list of free-text attributes whose released values the walker collects
for the review when a profile keeps them (at any depth).  It is chosen from the VRs that hold prose
a person or a modality typed (LO, SH, ST, LT, UT, UC, and the free-text-like CS Body Part Examined /
Content Label): descriptions, comments, labels and names of ROIs, structure sets, plans and
segments, annotation text and SR TEXT values.  ``CLEANED_TEXT`` adds Code Meaning: it is cleaned
like the rest (a local code's meaning can be typed by a person) but not listed for the review
(it is coded, and an SR holds hundreds); and every other attribute the data dictionary names as
prose (a description, comment, label, note...: ~200), cleaned, not listed.  Device and coded
attributes (Manufacturer, Code Value, Coding Scheme Designator) are not cleaned: a test site's
Institution Name "TOSHIBA" is no reason to change its Manufacturer "TOSHIBA_MEC".  Any kept text
under a VR its attribute does not have is cleaned too (``is_cleaned_text``): it may be another
attribute's value that a damaged tag moved there.

``collect_identity`` reads, before any rule runs and at every depth, every identity value the
profile removes or replaces in the object: every person name (PN, so also SR PNAME items), the
IDs, accession numbers, institution names, addresses, telephone numbers and station names of
``IDENTITY_KEYWORDS``, the dates the profile changes, and the values of SR observer and subject
context items (``IDENTITY_CONCEPTS``: login name, organisation, device name, location...).
``IdentityTokens`` turns them, with the hospital's deny-list, into tokens; a kept free-text value
that contains a token is cleaned (``TextCleaner``) before it is written.  Matching is
case-insensitive, on whole words (a token is not found inside a longer run of letters or digits),
and tokens shorter than 3 characters are left out (IDs and numbers: shorter than 4, digits only:
shorter than 5).  Tokens are made once per distinct set of identity values (the objects of one
series share them), and a value is cleaned once per distinct text and token set; their pattern is
compiled only for a text that may hold one of them (``may_hold``, a check without the pattern).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.datadict import DicomDictionary, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from deid.engine.vr import another_vr_than_its_attributes, fits, max_chars, vr_of
from deid.errors import ProfileError
from deid.io.items import converted_sequence
from deid.io.reader import MAX_NESTING, too_deeply_nested
from deid.io.text import raw_texts

if TYPE_CHECKING:
    from deid.engine.compiler import CompiledRules

_KEPT_TEXT_KEYWORDS = (
    # study, series, image, procedure
    "StudyDescription", "SeriesDescription", "ImageComments", "BodyPartExamined", "ProtocolName",
    "ContrastBolusAgent", "DerivationDescription", "AcquisitionComments", "FrameComments",
    "AcquisitionDeviceProcessingDescription", "RequestedProcedureDescription",
    "ScheduledProcedureStepDescription", "PerformedProcedureStepDescription",
    "CommentsOnThePerformedProcedureStep", "ReasonForTheRequestedProcedure",
    "AdmittingDiagnosesDescription", "AdditionalPatientHistory", "PatientComments", "StudyComments",
    "VisitComments", "ServiceEpisodeDescription", "ClinicalTrialSeriesDescription",
    "ReasonForStudy", "ImagingServiceRequestComments", "RequestedProcedureComments",
    # RT Structure Set, RT Plan
    "StructureSetLabel", "StructureSetName", "StructureSetDescription", "ROIName", "ROIDescription",
    "ROIGenerationDescription", "ROIObservationLabel", "ROIObservationDescription",
    "RTPlanLabel", "RTPlanName", "RTPlanDescription",
    # Segmentation, presentation states, SR and documents
    "SegmentLabel", "SegmentDescription", "SegmentAlgorithmName", "ContentLabel", "ContentDescription",
    "UnformattedTextValue", "TextValue", "DocumentTitle", "TextString",
)
KEPT_TEXT: dict[int, str] = {tag_for_keyword(k): k for k in _KEPT_TEXT_KEYWORDS}  # type: ignore[misc]
CODE_MEANING = 0x00080104
#: what names an attribute of prose in the data dictionary (its keyword's end), of a text VR
_PROSE_NAME = re.compile(r"(Description|Comments?|Remarks|Notes?|Label|Text|Reason|History|Diagnosis)$")
_PROSE_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})


def _prose_attributes() -> dict[int, str]:
    """Every other public attribute of the dictionary whose name says it holds prose (a
    description, comment, label, note...), of a text VR: ~200, most of which the table does not
    list and a profile keeps by default (Performed Procedure Type Description), or a damaged tag
    puts another attribute's text under (a Performed Procedure Step Description and its
    accession number).  Cleaned like the listed ones, not collected for the review."""
    return {tag: keyword for tag, (vr, _vm, _name, _retired, keyword) in DicomDictionary.items()
            if vr in _PROSE_VRS and _PROSE_NAME.search(keyword) and tag not in KEPT_TEXT}


CLEANED_TEXT: dict[int, str] = {**_prose_attributes(), **KEPT_TEXT, CODE_MEANING: "CodeMeaning"}
TEXT_VALUE = 0x0040A160


def is_cleaned_text(tag: int, vr: str) -> bool:
    """Whether a kept element is cleaned of identity values: an attribute of ``CLEANED_TEXT``, or
    text under a VR its attribute does not have (an LT under Ethnic Group's SH: a damaged tag
    moved Additional Patient History there, its name and telephone number with it), which is
    no longer known to be that attribute's value."""
    return tag in CLEANED_TEXT or (vr in _PROSE_VRS and another_vr_than_its_attributes(tag, vr))


def cleaned_text_name(tag: int) -> str:
    """The name an element's replaced identity values are counted under: its keyword, else its
    tag."""
    return CLEANED_TEXT.get(tag) or keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


#: Attributes whose value is an identity (besides every PN): how their value becomes tokens.
IDENTITY_KEYWORDS: dict[str, str] = {
    **{k: "id" for k in (
        "PatientID", "OtherPatientIDs", "AccessionNumber", "AdmissionID", "StudyID",
        "RequestedProcedureID", "ScheduledProcedureStepID", "PerformedProcedureStepID",
        "PlacerOrderNumberImagingServiceRequest", "FillerOrderNumberImagingServiceRequest",
        "MedicalRecordLocator", "DeviceSerialNumber",
        "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID", "IssuerOfPatientID")},
    **{k: "whole" for k in (
        "InstitutionName", "InstitutionalDepartmentName", "StationName", "PatientTelephoneNumbers",
        "PersonTelephoneNumbers", "ReferringPhysicianTelephoneNumbers", "MilitaryRank",
        "BranchOfService", "RequestingService", "PerformedStationName", "ScheduledStationName",
        "PerformedLocation", "ScheduledProcedureStepLocation", "CurrentPatientLocation",
        "PatientInstitutionResidence", "RegionOfResidence", "ClinicalTrialSiteName",
        "ClinicalTrialSponsorName", "ClinicalTrialCoordinatingCenterName", "CountryOfResidence")},
    **{k: "address" for k in (
        "InstitutionAddress", "PatientAddress", "PersonAddress", "ReferringPhysicianAddress")},
}
_IDENTITY_TAGS: dict[int, str] = {
    tag_for_keyword(k): kind for k, kind in IDENTITY_KEYWORDS.items() if tag_for_keyword(k)  # type: ignore[misc]
}
#: SR context concepts (code value, scheme) whose TEXT, PNAME or DATE value is an identity:
#: TID 1002-1004 observer context, TID 1006-1010 subject context.
IDENTITY_CONCEPTS: frozenset[tuple[str, str]] = frozenset((code, "DCM") for code in (
    "121008",  # Person Observer Name
    "128774",  # Person Observer's Login Name
    "121009",  # Person Observer's Organization Name
    "121012",  # Device Observer Name
    "121013",  # Device Observer UID (kept out below: a UID is remapped, not text)
    "121016",  # Device Observer Serial Number
    "121017",  # Device Observer Physical Location During Observation
    "121029",  # Subject Name
    "121030",  # Subject ID
    "121031",  # Subject Birth Date
    "121036",  # Mother of fetus
)) - {("121013", "DCM")}
_CONCEPT_NAME = 0x0040A043
_CODE_VALUE, _SCHEME = 0x00080100, 0x00080102
_CONTEXT_VALUES = {0x0040A160: "whole", 0x0040A123: "name", 0x0040A121: "date"}  # TEXT, PNAME, DATE
_DATE_VRS = ("DA", "DT")
MIN_TOKEN = 3
MIN_ID = 4
MIN_NUMBER = 5
_WORD_SPLIT = re.compile(r"[\s\-,.'()/]+")
_ADDRESS_SPLIT = re.compile(r"\s*[,;^\n]\s*")
PLACEHOLDER = "[removed]"


def peek(ds: Dataset, tag: int) -> list[str]:
    """The element's values as text, decoded with the dataset's character set, without changing
    the dataset (a raw element stays raw, so it is still written back byte for byte)."""
    elem: Any = ds._dict.get(tag)
    if elem is None:
        return []
    if isinstance(elem, RawDataElement):
        return _decode(elem, ds.original_character_set or ds._character_set, ds)
    return _texts(elem.value)


def name_tokens(name: str) -> set[str]:
    """Tokens of a person name: each component, each word of it, and the ideographic whole."""
    tokens: set[str] = set()
    for group in name.split("="):
        parts = [p.strip() for p in group.split("^") if p.strip()]
        tokens.update(parts)
        for part in parts:
            tokens.update(_WORD_SPLIT.split(part))
        if len(parts) >= 2:
            tokens.add(" ".join(parts[:2]))  # "Family Given"
            tokens.add(" ".join(parts[:2][::-1]))  # "Given Family", as prose writes it
        if parts and not parts[0].isascii():
            tokens.add("".join(parts[:2]))  # family + given written together, as CJK text does
    return {t for t in tokens if len(t) >= MIN_TOKEN}


def date_tokens(value: str) -> set[str]:
    """A DA value (or the date of a DT value) in the forms free text writes it."""
    value = value[:8]
    if len(value) != 8 or not value.isdigit():
        return set()
    y, m, d = value[:4], value[4:6], value[6:]
    return {value, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}",
            f"{m}/{d}/{y}"}


def id_tokens(value: str) -> set[str]:
    """An ID as a whole: at least 4 characters, at least 5 when it is only digits."""
    if len(value) < MIN_ID or (value.isdigit() and len(value) < MIN_NUMBER):
        return set()
    return {value}


def address_tokens(value: str) -> set[str]:
    """An address as a whole and each of its parts (street, district, city) of 5 characters or more."""
    parts = {p.strip() for p in _ADDRESS_SPLIT.split(value)}
    return {value} | {p for p in parts if len(p) >= 5}


_MAKERS = {"name": name_tokens, "date": date_tokens, "id": id_tokens, "address": address_tokens,
           "whole": lambda v: {v} if len(v) >= MIN_TOKEN else set()}


def load_deny_list(path: Path) -> tuple[str, ...]:
    """A deny-list file: one staff name, institution or street name per line (UTF-8); blank lines and
    lines starting with '#' are skipped, and entries shorter than 3 characters left out."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError:
        raise ProfileError(f"{path}: cannot read the deny-list file") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: the deny-list file is not UTF-8 text") from None
    entries = (line.strip() for line in text.splitlines())
    return tuple(sorted({e for e in entries if len(e) >= MIN_TOKEN and not e.startswith("#")}))


# -- reading the identity values of one object -----------------------------------------------
Captured = tuple[str, Any, Dataset]  # (kind, raw element or list of texts, the dataset holding it)


#: VRs whose elements :func:`collect_identity` reads even when the rules remove them (names,
#: dates, sequences, and no VR or UN, whose VR it looks up); besides, the identity attributes
READ_WHEN_REMOVED_VRS = frozenset({None, "", "UN", "PN", "SQ", *_DATE_VRS})


def read_when_removed(tag: int, vr: str | None) -> bool:
    """Whether :func:`collect_identity` reads an element even when the rules remove it: the
    others it never reads."""
    return vr in READ_WHEN_REMOVED_VRS or tag in _IDENTITY_TAGS


def collect_identity(ds: Dataset, rules: CompiledRules) -> list[Captured]:
    """Every identity value of ``ds`` (at any depth) that the rules do not keep, before they run.
    Raw elements are held as they are (immutable), converted ones copied as text."""
    found: list[Captured] = []
    _collect(ds, rules, (), False, found)
    return found


def _collect(ds: Dataset, rules: CompiledRules, path: tuple[int, ...], gone: bool,
             found: list[Captured]) -> None:
    if len(path) > MAX_NESTING:  # (the first walk over the whole tree: before any other recurses)
        raise too_deeply_nested(f"({path[0] >> 16:04X},{path[0] & 0xFFFF:04X})")
    elements = ds._dict
    if _CONCEPT_NAME in elements:
        _context_item(ds, found)
    decide = rules.decide
    for key, elem in list(elements.items()):
        vr = elem.VR
        if vr not in READ_WHEN_REMOVED_VRS and key not in _IDENTITY_TAGS:
            continue  # (most elements: neither a name, a date, a sequence nor an identity)
        tag = int(key)  # (a pydicom BaseTag runs its __eq__ in Python on every dict hit)
        if not vr or vr == "UN":
            vr = vr_of(tag)
        kind = _IDENTITY_TAGS.get(tag)
        if kind is None:
            if vr == "PN":
                kind = "name"
            elif vr in _DATE_VRS:
                kind = "date"
            elif vr == "SQ":
                inside = gone or decide(path, tag, vr).action in ("remove", "empty")
                if inside and isinstance(elem, RawDataElement):
                    # read only when its tokens are not cached (the walker deletes it unread)
                    found.append(("sequence", elem, ds))
                    continue
                # (ds[key]: read over its bytes by deid.io.items, or by pydicom as before)
                converted = converted_sequence(ds, key) or ds[key]
                _collect_items(converted.value, rules, path + (tag,), inside, found)
                continue
            else:
                continue
        if not gone and decide(path, tag, vr).action == "keep":
            continue
        if isinstance(elem, RawDataElement):
            if vr == "DT" and elem.value:  # only the date part is a token: the key stays per day
                elem = elem._replace(value=elem.value[:8], length=min(elem.length, 8))
            found.append((kind, elem, ds))
        else:
            found.append((kind, peek(ds, tag), ds))


def _collect_items(items: Any, rules: CompiledRules, path: tuple[int, ...], gone: bool,
                   found: list[Captured]) -> None:
    for item in items or ():
        if isinstance(item, Dataset):
            _collect(item, rules, path, gone, found)


def _removed_sequence(raw: RawDataElement, ds: Dataset) -> list[Captured]:
    """The identity values inside a sequence the rules remove, read from a copy of its bytes."""
    found: list[Captured] = []
    try:
        elem = convert_raw_data_element(raw, encoding=ds.original_character_set or ds._character_set, ds=ds)
    except (ValueError, TypeError, LookupError, NotImplementedError):
        return found
    _collect_items(elem.value, _ALL_REMOVED, (raw.tag,), True, found)
    return found


class _AllRemoved:
    """Rules for the inside of a removed sequence: nothing there is kept."""

    @staticmethod
    def decide(path: tuple[int, ...], tag: int, vr: str) -> Any:
        return _REMOVED


class _Removed:
    action = "remove"


_REMOVED = _Removed()
_ALL_REMOVED: Any = _AllRemoved()


def _context_item(item: Dataset, found: list[Captured]) -> None:
    """An SR observer or subject context item: its value is an identity whatever the rules say."""
    try:
        concept = item[_CONCEPT_NAME].value
        code = concept[0] if concept else None
        key = (str(code.get(_CODE_VALUE).value).strip(), str(code.get(_SCHEME).value).strip()) if code else None
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return
    if key not in IDENTITY_CONCEPTS:
        return
    for tag, kind in _CONTEXT_VALUES.items():
        if tag in item._dict:
            found.append((kind, peek(item, tag), item))


# -- tokens --------------------------------------------------------------------------------
class IdentityTokens:
    """The identity tokens of one object (its own values, captured before the rules ran) and of
    the deny-list; finds them in text."""

    def __init__(self, captured: list[Captured], deny: DenyList | None = None) -> None:
        self._captured = captured
        self.deny = deny  # the deny-list's pattern, made once per profile
        self._tokens: tuple[str, ...] | None = None

    def _key(self) -> tuple[Any, ...]:
        """What the tokens are made of, as plain values: the same for every slice of a series."""
        parts = []
        held_by = charset = None  # (the data set's character set read once, not per value)
        for kind, captured, ds in self._captured:
            if isinstance(captured, list):
                parts.append((kind, tuple(captured)))
            else:
                if ds is not held_by:
                    held_by, charset = ds, str(ds.original_character_set or ds._character_set)
                parts.append((kind, captured.tag, captured.VR, captured.value, charset))
        return tuple(parts)

    @property
    def own(self) -> tuple[str, ...]:
        """The object's own tokens (without the deny-list), longest first."""
        if self._tokens is None:
            key = self._key()
            cached = _TOKENS.get(key)
            if cached is None:
                cached = _TOKENS[key] = self._make_tokens()
                if len(_TOKENS) > _CACHE_SIZE:
                    del _TOKENS[next(iter(_TOKENS))]
            self._tokens = cached
        return self._tokens

    def _make_tokens(self) -> tuple[str, ...]:
        found: set[str] = set()
        captured_values = list(self._captured)
        for kind, captured, ds in captured_values:
            if kind == "sequence":
                captured_values += _removed_sequence(captured, ds)
                continue
            if isinstance(captured, list):
                values = captured
            else:
                values = _decode(captured, ds.original_character_set or ds._character_set, ds)
            for value in values:
                found |= _MAKERS[kind](value)
        return tuple(_longest_first(found))

    def patterns(self) -> tuple[re.Pattern[str], ...]:
        """The compiled patterns of the own tokens and of the deny-list (either may be absent)."""
        found = []
        if self.own:
            found.append(token_pattern(self.own))
        if self.deny is not None:
            found.append(self.deny.pattern)
        return tuple(found)

    def cleaner(self, placeholder: str) -> TextCleaner | None:
        """A cleaner of these tokens (None when there are none); its cache is shared by every object
        with the same tokens (a series).  The own tokens' pattern is compiled only for a text
        that may hold one of them (:func:`may_hold`): most objects' kept texts hold none, and
        the pattern of a patient's ~100 tokens takes ~1.3 ms to compile (per patient and worker:
        for one image per patient, as much as the rest of the rules)."""
        if not self.own and self.deny is None:
            return None
        return TextCleaner(self.own, self.deny, placeholder)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` contains a token as a whole word (case-insensitive)."""
        return any(p.search(text) is not None for p in self.patterns())


class DenyList:
    """The deny-list's entries as one pattern, and a digest that names them (a cache key)."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        import hashlib

        self.pattern = token_pattern(tuple(entries))
        self.digest = hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()


class HiddenTokens:
    """Identity tokens on their way to the encrypted re-identification map: hidden from ``repr`` and
    ``str`` (a log call or an f-string shows none), and not a list (``json.dumps`` refuses them)."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = tuple(values)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<identity tokens: {len(self._values)} hidden>"

    __str__ = __repr__

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (HiddenTokens, (self._values,))


def _longest_first(tokens: Iterable[str]) -> list[str]:
    return sorted({t for t in tokens if len(t) >= MIN_TOKEN}, key=lambda t: (-len(t), t))


# The objects of one patient carry the same identity values: their tokens and pattern are made once.
# Kept for the last few patients only (objects come patient by patient): a bound reached early keeps
# a run's memory flat, whatever the number of patients (bench/bench_memory.py).
_CACHE_SIZE = 32
_TOKENS: dict[tuple[Any, ...], tuple[str, ...]] = {}


@lru_cache(maxsize=_CACHE_SIZE)
def token_pattern(tokens: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern finding any of ``tokens`` as a whole word, case-insensitive, longest first;
    spaces inside a token match any run of white space."""
    ordered = _longest_first(tokens)
    alternatives = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in ordered) or r"(?!x)x"
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


def may_hold(text: str, tokens: tuple[str, ...]) -> bool:
    """Whether ``text`` may hold one of ``tokens`` as :func:`token_pattern` finds them: False only
    when, for every token, a word of it is nowhere in the lower-cased text between two characters
    that are not letters or digits (or an end), as each word of a match is (a necessary
    condition, exact for ASCII: text and tokens that are not ASCII are always True, since
    re.IGNORECASE folds some letters that str.lower does not)."""
    words = _token_words(tokens)
    if words is None or not text.isascii():
        return True
    lowered = text.lower()
    for token in words:
        for word in token:
            if word not in lowered or not _has_word(lowered, word):
                break
        else:
            return True
    return False


def _has_word(text: str, word: str) -> bool:
    """Whether ``word`` is in ``text`` with no ASCII letter or digit just before or after it."""
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        before_ok = start == 0 or not text[start - 1].isalnum()
        if before_ok and (end == len(text) or not text[end].isalnum()):
            return True
        start = text.find(word, start + 1)
    return False


@lru_cache(maxsize=_CACHE_SIZE)
def _token_words(tokens: tuple[str, ...]) -> tuple[tuple[str, ...], ...] | None:
    """The words, lower-cased, of each token an ASCII text may hold (a space in a token matches
    any run of white space); a token with a letter no ASCII letter matches (a CJK name, JÜRGEN)
    is in no ASCII text.  None when a token that is not ASCII may still match ASCII text (the
    Kelvin sign matches k): the pattern decides."""
    words = []
    for token in tokens:
        if token.isascii():
            words.append(tuple(token.lower().split()))
        elif all(char.isascii() or _matches_ascii(char) for char in token):
            return None
    return tuple(words)


@lru_cache(maxsize=4096)
def _matches_ascii(char: str) -> bool:
    """Whether an ASCII character matches ``char`` case-insensitively, as token_pattern matches."""
    pattern = re.compile(re.escape(char), re.IGNORECASE)
    return any(pattern.fullmatch(chr(code)) for code in range(128))


# -- cleaning ------------------------------------------------------------------------------
_CLEANED_SIZE = 4096


class TextCleaner:
    """Replaces every token found in a text by the placeholder, keeping the value within its VR:
    the object's own tokens first, then the deny-list's."""

    def __init__(self, own: tuple[str, ...], deny: DenyList | None,
                 placeholder: str = PLACEHOLDER) -> None:
        self.own = own
        self.deny = deny
        self.placeholder = placeholder
        # texts already cleaned with the same tokens: keyed by the tokens, not the patterns (hashing
        # a compiled pattern hashes its whole program, slow for a long deny-list)
        key = (own, deny.digest if deny is not None else "")
        self._cache: dict[str, tuple[str, int]] = _cleaned_cache((key, placeholder))

    def clean(self, text: str) -> tuple[str, int]:
        """``text`` with each token replaced, and how many were replaced."""
        found = self._cache.get(text)
        if found is None:
            new, count = text, 0
            if self.own and may_hold(text, self.own):
                new, count = token_pattern(self.own).subn(self.placeholder, new)
            if self.deny is not None:
                new, n = self.deny.pattern.subn(self.placeholder, new)
                count += n
            found = self._cache[text] = (new, count)
            if len(self._cache) > _CLEANED_SIZE:
                del self._cache[next(iter(self._cache))]
        return found

    def fit(self, vr: str, value: str) -> str:
        """A cleaned value that fits ``vr``: as it is, else the placeholder alone (in the VR's form)."""
        if fits(vr, value):
            return value
        placeholder = vr_placeholder(vr, self.placeholder)
        return placeholder


_CLEANED: dict[Any, dict[str, tuple[str, int]]] = {}
_CLEANED_TOKEN_SETS = 8  # texts cleaned, kept for this many token sets (patients) at a time


def _cleaned_cache(key: Any) -> dict[str, tuple[str, int]]:
    found = _CLEANED.get(key)
    if found is None:
        found = _CLEANED[key] = {}
        if len(_CLEANED) > _CLEANED_TOKEN_SETS:
            del _CLEANED[next(iter(_CLEANED))]
    return found


def vr_placeholder(vr: str, placeholder: str) -> str:
    """The placeholder in a form ``vr`` accepts (CS: upper-case letters, digits, space, underscore)."""
    if vr in ("CS", "AE"):
        placeholder = re.sub(r"[^A-Z0-9 _]", "", placeholder.upper()).strip() or "REMOVED"
    limit = max_chars(vr)
    return placeholder[:limit] if limit else placeholder


def _decode(raw: RawDataElement, charset: Any, ds: Dataset) -> list[str]:
    if raw.value is None or raw.length == 0:
        return []
    texts = raw_texts(raw, raw.VR, charset)  # plain ASCII: read from the bytes, as pydicom would
    if texts is not None:
        return texts
    try:
        value = convert_raw_data_element(raw, encoding=charset, ds=ds).value
    except (ValueError, TypeError, LookupError):
        return []
    return _texts(value)


def _texts(value: Any) -> list[str]:
    values = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    texts = (str(v).strip() for v in values if v is not None)
    return [t for t in texts if t]
