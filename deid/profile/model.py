"""The loaded profile: a frozen, validated description of what to do to each attribute.

Precedence (the one place it is written down; the compiler in ``deid.engine.compiler`` applies it):
SOP-class + tag rule > tag rule > class rule > base profile (PS3.15 table with options) > keep;
a private attribute kept by the Retain Safe Private option (safe_private) comes before all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

ACTIONS = (
    "keep",             # leave the value as it is (sequences are still walked)
    "remove",           # delete the attribute (becomes empty/dummy where the IOD requires it)
    "empty",            # keep the attribute with a zero-length value
    "dummy",            # replace with a fixed dummy value that fits the VR
    "replace",          # replace with the value given in the rule
    "hash",             # keyed HMAC-SHA256, hex, cut to `length` (never past the VR's limit)
    "pseudonym",        # a consistent replacement: case number (PN), remapped UID (UI), else keyed hash
    "generalise_date",  # keep the year, month and day become 01 01 (DA and the date part of DT)
    "remap_uid",        # 2.25.<decimal of HMAC(key, uid)> or under the configured root
)

PRECEDENCE = ("sop_class_tag", "tag", "class", "base", "default")

CLASS_NAMES = ("private", "overlays", "curves", "instance_uids", "dates")

# What happens to an SR content item (structured_content: in the YAML) when ...
#   text_not_kept: it is a TEXT item whose concept keep_text does not name;
#   value_removed: a rule removes or empties its value (Type 1C: the item would be invalid);
#   text_with_identity: its kept TEXT value contains an identity value of the object (read here;
#   the check of kept free text lives with the walker's review of kept text).
# remove_item: the whole content item goes with its subtree; where that would take measurements,
# coordinates or references with it (or a by-reference relationship points at it), a TEXT value is
# replaced by the placeholder instead, and any other item quarantines the object.
# quarantine: the object goes to quarantine.
CONTENT_ITEM_ACTIONS = ("remove_item", "quarantine")
# text_with_identity also takes replace: the identity values in the TEXT value are replaced by the
# free_text placeholder, like any kept free text (remove_item, where the item is not removed before
# the walk, is carried out as replace: the value never goes out with the identity in it).
TEXT_WITH_IDENTITY_ACTIONS = ("replace", "remove_item", "quarantine")

# What happens to kept free text (free_text: in the YAML) that contains an identity value of the
# object or of the deny-list: replace (each match becomes the placeholder) or quarantine.
FREE_TEXT_ACTIONS = ("replace", "quarantine")
PLACEHOLDER = "[removed]"

# What a concept rule (structured_content.concepts) does to a content item of that concept,
# whatever its value type: remove the item; dummy: a fixed value of the item's type (UIDs remapped);
# replace: the rule's value; pseudonym: a keyed hash of the value (in its own domain, or the one of
# the attribute named by same_as), a remapped UID for UIDREF.
CONCEPT_ACTIONS = ("remove", "dummy", "replace", "pseudonym")
DEFAULT_PLACEHOLDER = "REMOVED"


@dataclass(frozen=True)
class Rule:
    """One action with its parameters and where it came from (for explain and the records)."""

    action: str
    source: str
    value: str | None = None
    length: int | None = None

    def describe(self) -> str:
        extra = ""
        if self.action == "replace":
            extra = f" {self.value!r}"
        elif self.length is not None:
            extra = f" (length {self.length})"
        return f"{self.action}{extra}"


#: limits.max_object_size when no profile sets it: larger input files are quarantined unread
#: (``too-large``); every object is held in memory whole, once per worker
DEFAULT_MAX_OBJECT_BYTES = 2 << 30

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
          "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
          "tib": 1 << 40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes of a size written as a whole number of bytes or with a unit ('512 MiB', '2GB');
    ``ValueError`` for anything else, or for less than one byte."""
    if isinstance(text, int) and not isinstance(text, bool):
        size = text
    else:
        match = _SIZE.match(str(text))
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(f"{text!r} is not a size (e.g. 2147483648, '512 MiB' or '2 GiB')")
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < 1:
        raise ValueError(f"{text!r}: a size is at least 1 byte")
    return size


@dataclass(frozen=True)
class ConceptRule:
    """What to do with the content items of one concept (Concept Name Code Sequence: code value +
    coding scheme designator); ``action`` is ``keep`` for an entry of keep_text."""

    code: str
    scheme: str
    meaning: str
    action: str
    source: str
    value: str | None = None
    length: int | None = None
    same_as: int | None = None  # the tag whose pseudonym this concept shares (e.g. PatientID)

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.scheme)

    def describe(self) -> str:
        if self.action == "replace":
            return f"replace {self.value!r}"
        if self.action == "pseudonym" and self.same_as is not None:
            from deid.profile.tags import tag_name

            return f"pseudonym as {tag_name(self.same_as)}"
        if self.action == "pseudonym" and self.length is not None:
            return f"pseudonym (length {self.length})"
        return self.action


@dataclass(frozen=True)
class SafePrivateRule:
    """A private attribute the profile keeps with the Retain Safe Private option (safe_private in
    the YAML): its Private Creator, odd group and element byte ``(gggg,xxee)``, never the group and
    element alone."""

    creator: str
    group: int
    element: int
    source: str

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.creator, self.group, self.element)

    def describe(self) -> str:
        return f"({self.group:04X},xx{self.element:02X}) {self.creator}"


LABEL_MISMATCH = ("quarantine", "hash")  # what to do with a value the label pattern does not match


@dataclass(frozen=True)
class Label:
    """A label carried from an original value into its pseudonym: ``<label><separator><hash>``.

    ``pattern``'s one group is the label (e.g. ``^([ABEG])`` keeps a diagnosis-group letter); a
    value it does not match is quarantined, or with ``on_mismatch: hash`` gets a plain hash.
    """

    pattern: re.Pattern[str]
    source: str
    separator: str = "-"
    on_mismatch: str = "quarantine"

    def describe(self) -> str:
        return (f"label {self.pattern.pattern!r} + {self.separator!r} + pseudonym; "
                f"no match: {self.on_mismatch}")


REGION_KEYS = ("sop_class", "modality", "manufacturer", "model", "capture_manufacturer",
               "capture_model", "rows", "columns")


@dataclass(frozen=True)
class PixelRegion:
    """Pixel boxes to blank in objects whose attributes all match ``match``.

    ``match`` maps a key of :data:`REGION_KEYS` to the accepted values (SOP class UIDs, or
    upper-cased text, or sizes); ``boxes`` are ``(x, y, width, height)`` in pixels, from the top left.
    """

    name: str
    source: str
    match: Mapping[str, tuple[str, ...]]
    boxes: tuple[tuple[int, int, int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", MappingProxyType(dict(self.match)))

    def describe_match(self) -> str:
        return ", ".join(f"{key}={'|'.join(values)}" for key, values in self.match.items()) or "any object"


#: pixels.ocr.blank: blank every word OCR finds, or only identity (the object's identity values,
#: the deny-list, and words that look like a date or an ID); the rest is kept and listed for review
OCR_BLANK = ("all", "identity")
#: pixels.lossy: what happens to lossy compressed pixels that must be blanked: quarantine (with the
#: command that decodes them), or reencode (decoded, blanked, written RLE Lossless: no further loss)
LOSSY_ACTIONS = ("quarantine", "reencode")
OCR_SELECT_KEYS = REGION_KEYS + ("burned_in",)
#: pixels.ocr.select when a profile gives none: ultrasound, secondary capture, angiography,
#: fluoroscopy and other images, and every object without Burned In Annotation
DEFAULT_OCR_SELECT: tuple[Mapping[str, tuple[str, ...]], ...] = (
    MappingProxyType({"modality": ("US", "SC", "XA", "RF", "OT")}),
    MappingProxyType({"burned_in": ("ABSENT",)}),
)


@dataclass(frozen=True)
class OcrSettings:
    """Burned-in text found by OCR (``pixels.ocr``): which objects are read (objects at risk when
    ``at_risk``, and any object matching one entry of ``select``: all its keys), what is blanked,
    and the lowest word confidence (0-100) that counts as text."""

    source: str
    blank: str = "all"
    at_risk: bool = True
    select: tuple[Mapping[str, tuple[str, ...]], ...] = DEFAULT_OCR_SELECT
    min_confidence: float = 60.0

    def describe_select(self) -> str:
        entries = [", ".join(f"{k}={'|'.join(v)}" for k, v in entry.items()) for entry in self.select]
        return " or ".join((["at risk"] if self.at_risk else []) + entries) or "no object"


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)
class Profile:
    """A resolved profile: its own rules merged over those of the profiles it extends."""

    name: str
    version: str
    path: str
    sha256: str
    description: str
    method_description: str
    standard_table: bool
    options: tuple[str, ...]
    tag_rules: Mapping[int, Rule] = field(default_factory=dict)
    class_rules: Mapping[str, Rule] = field(default_factory=dict)
    sop_class_rules: Mapping[str, Mapping[int, Rule]] = field(default_factory=dict)
    uid_root: str | None = None
    allow_burned_in: bool = False
    case_number_digits: int = 10
    chain: tuple[str, ...] = ()
    labels: Mapping[int, Label] = field(default_factory=dict)  # tag -> label kept in its pseudonym
    pixel_regions: tuple[PixelRegion, ...] = ()  # first match wins
    ocr: OcrSettings | None = None  # pixels.ocr: burned-in text found by OCR and blanked
    lossy_pixels: str = "quarantine"  # pixels.lossy: lossy compressed pixels to blank
    text_with_identity: str = "quarantine"  # structured_content.text_with_identity
    content_value_removed: str = "remove_item"  # structured_content.value_removed
    text_not_kept: str = "remove_item"  # structured_content.text_not_kept
    content_placeholder: str = DEFAULT_PLACEHOLDER  # structured_content.placeholder
    kept_text: Mapping[tuple[str, str], ConceptRule] = field(default_factory=dict)  # keep_text
    concept_rules: Mapping[tuple[str, str], ConceptRule] = field(default_factory=dict)  # concepts
    dciodvfy_gate: bool = False  # release_check.dciodvfy: quarantine what adds a dciodvfy error
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES  # limits.max_object_size: larger inputs are too-large
    text_on_identity: str = "replace"  # free_text.on_identity
    text_placeholder: str = PLACEHOLDER  # free_text.placeholder
    deny_list: tuple[str, ...] = ()  # free_text.deny_list (and --deny-list): names searched in kept text
    deny_list_sha256: str = ""  # of the deny-list entries, so a record shows which list was used
    # safe_private: kept with the option retain_safe_private, besides PS3.15 Table E.3.10-1
    safe_private: tuple[SafePrivateRule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag_rules", _frozen(self.tag_rules))
        object.__setattr__(self, "class_rules", _frozen(self.class_rules))
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "kept_text", _frozen(self.kept_text))
        object.__setattr__(self, "concept_rules", _frozen(self.concept_rules))
        object.__setattr__(
            self,
            "sop_class_rules",
            _frozen({uid: _frozen(rules) for uid, rules in self.sop_class_rules.items()}),
        )
