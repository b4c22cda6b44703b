"""What a person must review after a release: kept free text, and whether it names its own patient.

``KEPT_TEXT`` is the fixed list of free-text attributes whose released values the walker collects
when a profile keeps them (at any depth).  It is chosen from the VRs that hold prose a person or a
modality typed (LO, SH, ST, LT, UT, UC, and the free-text-like CS Body Part Examined / Content
Label): descriptions, comments, labels and names of ROIs, structure sets, plans and segments, and
SR TEXT values.  Coded values (Code Meaning), numbers, dates and UIDs are not on it: they carry no
prose, and reading them would cost time on every object.

``IdentityTokens`` are the identity values of one object, read before the rules run (names and
their components, IDs (also those in Other Patient IDs Sequence), accession number, birth date, institution, physicians' names); a kept
value that contains one is flagged.  Matching is case-insensitive, on whole words (a token is not
found inside a longer run of letters or digits), and tokens shorter than 3 characters are left out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


_KEPT_TEXT_KEYWORDS = (
    # study, series, image, procedure
    "StudyDescription", "SeriesDescription", "ImageComments", "BodyPartExamined", "ProtocolName",
    "ContrastBolusAgent", "DerivationDescription", "AcquisitionComments", "FrameComments",
    "AcquisitionDeviceProcessingDescription", "RequestedProcedureDescription",
    "ScheduledProcedureStepDescription", "PerformedProcedureStepDescription",
    "CommentsOnThePerformedProcedureStep", "ReasonForTheRequestedProcedure",
    "AdmittingDiagnosesDescription", "AdditionalPatientHistory", "PatientComments", "StudyComments",
    "VisitComments", "ServiceEpisodeDescription", "ClinicalTrialSeriesDescription",
    # RT Structure Set, RT Plan
    "StructureSetLabel", "StructureSetName", "StructureSetDescription", "ROIName", "ROIDescription",
    "ROIGenerationDescription", "ROIObservationLabel", "ROIObservationDescription",
    "RTPlanLabel", "RTPlanName", "RTPlanDescription",
    # Segmentation, presentation states, SR and documents
    "SegmentLabel", "SegmentDescription", "SegmentAlgorithmName", "ContentLabel", "ContentDescription",
    "UnformattedTextValue", "TextValue", "DocumentTitle",
)
KEPT_TEXT: dict[int, str] = {tag_for_keyword(k): k for k in _KEPT_TEXT_KEYWORDS}  # type: ignore[misc]

_NAME_KEYWORDS = (
    "PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "ReferringPhysicianName", "ConsultingPhysicianName", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "OperatorsName", "RequestingPhysician",
    "ResponsiblePerson",
)
_WHOLE_KEYWORDS = (
    "PatientID", "OtherPatientIDs", "AccessionNumber", "AdmissionID", "InstitutionName",
    "InstitutionAddress", "PatientAddress", "PatientTelephoneNumbers",
)
_NAME_TAGS = tuple(tag_for_keyword(k) for k in _NAME_KEYWORDS)
_WHOLE_TAGS = tuple(tag_for_keyword(k) for k in _WHOLE_KEYWORDS)
_BIRTH_DATE = 0x00100030
_OTHER_IDS_SEQUENCE = 0x00101002  # Other Patient IDs Sequence > Patient ID
_PATIENT_ID = 0x00100020
MIN_TOKEN = 3
_WORD_SPLIT = re.compile(r"[\s\-,.'()/]+")


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
        if parts and not parts[0].isascii():
            tokens.add("".join(parts[:2]))  # family + given written together, as CJK text does
    return {t for t in tokens if len(t) >= MIN_TOKEN}


def date_tokens(value: str) -> set[str]:
    """A DA value in the forms free text writes it."""
    if len(value) != 8 or not value.isdigit():
        return {value} if len(value) >= MIN_TOKEN else set()
    y, m, d = value[:4], value[4:6], value[6:]
    return {value, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}"}


class IdentityTokens:
    """The identity values of one object, captured before the rules change them (cheaply: raw
    elements are decoded only when there is kept text to check); finds them in text."""

    def __init__(self, ds: Dataset) -> None:
        self._ds = ds
        self._charset = None
        self._captured: list[tuple[str, Any]] = []
        elements = ds._dict
        for kind, tags in (("name", _NAME_TAGS), ("whole", _WHOLE_TAGS), ("date", (_BIRTH_DATE,))):
            for tag in tags:
                elem = elements.get(tag)
                if elem is None:
                    continue
                if isinstance(elem, RawDataElement):
                    self._captured.append((kind, elem))  # immutable: safe to decode later
                else:  # a converted element may be changed in place by the rules: copy its text now
                    self._captured.append((kind, peek(ds, tag)))
        if _OTHER_IDS_SEQUENCE in elements:  # the patient's other IDs (MRNs): copied now, values are few
            items = ds[_OTHER_IDS_SEQUENCE].value or []
            self._captured.append(("whole", [v for item in items for v in peek(item, _PATIENT_ID)]))
        self._tokens: list[str] | None = None
        self._pattern: re.Pattern[str] | None = None

    def _key(self) -> tuple[Any, ...]:
        """What the tokens are made of, as plain values: the same for every slice of a series."""
        charset = self._ds.original_character_set or self._ds._character_set
        parts = tuple(
            (kind, tuple(captured) if isinstance(captured, list) else (captured.tag, captured.VR, captured.value))
            for kind, captured in self._captured
        )
        return (str(charset), parts)

    @property
    def tokens(self) -> list[str]:
        """Every token, longest first."""
        if self._tokens is None:
            key = self._key()
            cached = _TOKENS.get(key)
            if cached is None:
                cached = _TOKENS[key] = self._make_tokens()
                if len(_TOKENS) > _CACHE_SIZE:
                    del _TOKENS[next(iter(_TOKENS))]
            self._tokens = cached
        return self._tokens

    def _make_tokens(self) -> list[str]:
        found: set[str] = set()
        charset = self._ds.original_character_set or self._ds._character_set
        for kind, captured in self._captured:
            values = captured if isinstance(captured, list) else _decode(captured, charset, self._ds)
            for value in values:
                if kind == "name":
                    found |= name_tokens(value)
                elif kind == "date":
                    found |= date_tokens(value)
                else:
                    found.add(value)
        return sorted({t for t in found if len(t) >= MIN_TOKEN}, key=lambda t: (-len(t), t))

    def found_in(self, text: str) -> bool:
        """Whether ``text`` contains a token as a whole word (case-insensitive)."""
        if self._pattern is None:
            if not self.tokens:
                return False
            self._pattern = _pattern(tuple(self.tokens))
        return self._pattern.search(text) is not None

    def flagged(self, kept_text: dict[str, list[str]]) -> list[str]:
        """The keywords of ``kept_text`` with a value that contains a token, sorted."""
        return sorted(k for k, values in kept_text.items() if any(self.found_in(v) for v in values))


# The objects of one patient carry the same identity values: their tokens and pattern are made once.
_CACHE_SIZE = 256
_TOKENS: dict[tuple[Any, ...], list[str]] = {}


@lru_cache(maxsize=_CACHE_SIZE)
def _pattern(tokens: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(t) for t in tokens)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


def _decode(raw: RawDataElement, charset: Any, ds: Dataset) -> list[str]:
    if raw.value is None or raw.length == 0:
        return []
    try:
        value = convert_raw_data_element(raw, encoding=charset, ds=ds).value
    except (ValueError, TypeError, LookupError):
        return []
    return _texts(value)


def _texts(value: Any) -> list[str]:
    values = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    texts = (str(v).strip() for v in values if v is not None)
    return [t for t in texts if t]
