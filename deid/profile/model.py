"""The loaded profile: a frozen, validated description of what to do to each attribute.

Precedence (the one place it is written down; the compiler in ``deid.engine.compiler`` applies it):
SOP-class + tag rule > tag rule > class rule > base profile (PS3.15 table with options) > keep.
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
#   text_with_identity: its kept TEXT value contains an identity value of the object;
#   value_removed: a rule removes or empties its value (Type 1C: the item would be invalid).
# remove_item: the whole content item goes (its subtree too, unless that holds measurements,
# coordinates or references: then the object is quarantined); quarantine: the object goes to
# quarantine.
CONTENT_ITEM_ACTIONS = ("remove_item", "quarantine")
# text_with_identity also takes replace: the identity values in the TEXT value are replaced by the
# free_text placeholder, like any kept free text (remove_item, where the item is not removed before
# the walk, is carried out as replace: the value never goes out with the identity in it).
TEXT_WITH_IDENTITY_ACTIONS = ("replace", "remove_item", "quarantine")

# What happens to kept free text (free_text: in the YAML) that contains an identity value of the
# object or of the deny-list: replace (each match becomes the placeholder) or quarantine.
FREE_TEXT_ACTIONS = ("replace", "quarantine")
PLACEHOLDER = "[removed]"


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
    text_with_identity: str = "quarantine"  # structured_content.text_with_identity
    content_value_removed: str = "remove_item"  # structured_content.value_removed
    dciodvfy_gate: bool = False  # release_check.dciodvfy: quarantine what adds a dciodvfy error
    text_on_identity: str = "replace"  # free_text.on_identity
    text_placeholder: str = PLACEHOLDER  # free_text.placeholder
    deny_list: tuple[str, ...] = ()  # free_text.deny_list (and --deny-list): names searched in kept text
    deny_list_sha256: str = ""  # of the deny-list entries, so a record shows which list was used

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag_rules", _frozen(self.tag_rules))
        object.__setattr__(self, "class_rules", _frozen(self.class_rules))
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(
            self,
            "sop_class_rules",
            _frozen({uid: _frozen(rules) for uid, rules in self.sop_class_rules.items()}),
        )
