"""Burned-in text: which objects get their pixels blanked or read, what is blanked, and the review.

:func:`pixel_plan` decides, from the original attributes, what an object's pixels need: the
profile's region that matches its device (blanked without reading), and whether OCR reads it
(``pixels.ocr.select``, and objects at risk).  :meth:`PixelPlan.apply` then decodes compressed
pixels (deid.engine.recode), blanks the region, reads every frame with Tesseract
(deid.engine.ocr), blanks the words the profile says (every word, or the identity ones: the
object's identity tokens, the deny-list, dates and ID-like words, compared after folding the
letters OCR confuses with digits), writes the pixels back (encoded again when they were
compressed), and returns a :class:`PixelReview`: the count of blanked regions, thumbnails of their
surroundings *after* blanking, and the count of words found and kept (the object is then listed for
a person's review).  Anything that cannot be read or blanked is an ObjectError: the object goes to
quarantine, never out unchecked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from deid.engine import ocr, recode
from deid.engine.pixels import (
    NativePixels,
    is_encapsulated,
    matching_region,
    native_pixels,
    region_mask,
)
from deid.engine.review import IdentityTokens, token_pattern
from deid.errors import ObjectError
from deid.io.reader import peek_text
from deid.profile.model import OcrSettings, PixelRegion, Profile

SECONDARY_CAPTURE_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",
})
ICON_IMAGE_SEQUENCE = 0x00880200
BURNED_IN_ANNOTATION = 0x00280301
PIXEL_DATA = 0x7FE00010
#: Thumbnails kept per object (blanked regions; kept text): the counts are always complete.
THUMBNAILS = 8
KEPT_THUMBNAILS = 4
THUMBNAIL_WIDTH = 240
BOXES = 64
#: Words lower than this (in frame pixels) are noise, not text a person could read.
MIN_WORD_HEIGHT = 7
SURE = 85  # the confidence a word of one or two characters needs
LONG_WORD, LONG_WORD_CONFIDENCE = 6, 30
ALIGNED = 2  # pixels: words in one column or row of text
ALIGNED_CONFIDENCE = 20

_FOLD = str.maketrans("OILSBZ|", "0115821")  # letters OCR reads for digits (and back)
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DATE = re.compile(
    r"(?<![0-9])(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    rf"|\d{{1,2}}[- ]?(?:{_MONTHS})[A-Z]*\.?[- ,]*\d{{2,4}}|(?:{_MONTHS})[A-Z]*\.? ?\d{{1,2}},? \d{{4}})"
    r"(?![0-9])")


@dataclass
class PixelReview:
    """What blanking did to one object, for the audit line and the report (no text, no values)."""

    regions: int = 0  # blanked rectangles (profile boxes; OCR words, those that touch joined), all frames
    read: bool = False  # OCR read the object
    frames_read: int = 0
    words_found: int = 0
    words_kept: int = 0  # found and left in the pixels (blank: identity): listed for review
    thumbnails: list[str] = field(default_factory=list)  # PNG data URIs, after blanking
    kept_thumbnails: list[str] = field(default_factory=list)  # where kept text is (as released)
    transfer_syntax: str = ""  # the syntax written again, when the pixels were compressed
    recoded_from: str = ""
    #: (frame, x, y, width, height) of each blanked region (the first BOXES in the audit line)
    boxes: list[tuple[int, int, int, int, int]] = field(default_factory=list, repr=False)

    @property
    def cleared(self) -> bool:
        """Whether Burned In Annotation may say NO: something was blanked and no text was kept."""
        return self.regions > 0 and self.words_kept == 0

    def counts(self) -> dict[str, int]:
        """The actions this review adds to the object's counts."""
        counts = {"blank_pixel_region": 1} if self.regions else {}
        if self.read:
            counts["ocr_read"] = 1
        if self.transfer_syntax:
            counts["pixels_reencoded"] = 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {"regions": self.regions, "read": self.read, "frames_read": self.frames_read,
                "words_found": self.words_found, "words_kept": self.words_kept,
                "thumbnails": self.thumbnails, "kept_thumbnails": self.kept_thumbnails,
                "transfer_syntax": self.transfer_syntax, "recoded_from": self.recoded_from,
                "boxes": [list(box) for box in self.boxes[:BOXES]]}


def at_risk(ds: Dataset, sop_class: str) -> bool:
    """Burned In Annotation YES, or a Secondary Capture that does not say NO."""
    burned = peek_text(ds, BURNED_IN_ANNOTATION).strip().upper()
    return burned == "YES" or (sop_class in SECONDARY_CAPTURE_CLASSES and burned != "NO")


def _values(ds: Dataset, sop_class: str) -> dict[str, str]:
    from deid.engine.pixels import _MATCH_ATTRIBUTES, _text

    values = {"sop_class": sop_class}
    for keyword, key in _MATCH_ATTRIBUTES:
        values[key] = _text(ds, keyword)
    values["burned_in"] = peek_text(ds, BURNED_IN_ANNOTATION).strip().upper() or "ABSENT"
    return values


def has_image(ds: Dataset) -> bool:
    """Whether ``ds`` has pixels that can show text: Pixel Data of 8 bits or more per sample (not a
    structure set, report or 1-bit segmentation)."""
    if PIXEL_DATA not in ds._dict:
        return False
    try:
        return int(ds.get("BitsAllocated", 0) or 0) >= 8
    except (TypeError, ValueError):
        return True  # unreadable: read it, and let blanking say what is wrong


def selected(settings: OcrSettings, ds: Dataset, sop_class: str) -> bool:
    """Whether the profile's OCR reads this object (from its original attributes): only images
    (:func:`has_image`); any object at risk (when ``at_risk``), or one matching an entry of select."""
    if not has_image(ds):
        return False
    if settings.at_risk and at_risk(ds, sop_class):
        return True
    values = _values(ds, sop_class)
    return any(all(values.get(key, "") in accepted for key, accepted in entry.items())
               for entry in settings.select)


@dataclass
class PixelPlan:
    """What one object's pixels need: a profile region, OCR, or both."""

    profile: Profile
    region: PixelRegion | None
    read: bool

    def apply(self, ds: Dataset, tokens: IdentityTokens | None) -> PixelReview:
        """Blank ``ds``'s pixels in place (every frame); the Icon Image Sequence goes."""
        review = PixelReview(read=self.read)
        original = None
        if is_encapsulated(ds):
            original = recode.decode(ds, self.profile.lossy_pixels)
            review.recoded_from = str(original)
        what = "the profile reads this object for burned-in text" if self.region is None else \
            "a pixel region matches"
        native = native_pixels(ds, what)
        frames, rows, columns, _ = native.view.shape
        boxes: list[list[tuple[int, int, int, int]]] = [[] for _ in range(frames)]
        if self.region is not None:
            mask = region_mask(self.region, rows, columns)
            if not mask.any():
                raise ObjectError(
                    "region-outside-image", f"the pixel region {self.region.name!r} lies outside this "
                    f"{columns}x{rows} image, so nothing would be blanked; correct the region's boxes "
                    "or its match (rows/columns)", stage="pixels", path="(7FE0,0010)")
            native.blank(mask)
            for frame in boxes:
                frame += [_clip(box, rows, columns) for box in self.region.boxes]
        kept: list[list[tuple[int, int, int, int]]] = [[] for _ in range(frames)]
        if self.read and self.profile.ocr is not None:
            self._read(native, tokens, boxes, kept, review)
        review.boxes = [(index, *box) for index, frame in enumerate(boxes) for box in frame]
        review.regions = len(review.boxes)
        review.thumbnails = _thumbnails(native, boxes, THUMBNAILS)
        review.kept_thumbnails = _thumbnails(native, [_merged(frame) for frame in kept], KEPT_THUMBNAILS)
        native.write_back(ds)
        if original is not None:
            review.transfer_syntax = str(recode.encode(ds, original))
        if ICON_IMAGE_SEQUENCE in ds._dict:  # a thumbnail of the same pixels, text included
            del ds._dict[BaseTag(ICON_IMAGE_SEQUENCE)]
        return review

    def _read(self, native: NativePixels, tokens: IdentityTokens | None,
              boxes: list[list[tuple[int, int, int, int]]], kept: list[list[tuple[int, int, int, int]]],
              review: PixelReview) -> None:
        settings = self.profile.ocr
        assert settings is not None
        frames, rows, columns, _ = native.view.shape
        matcher = IdentityMatcher(tokens, self.profile.deny_list) if settings.blank == "identity" else None
        seen: dict[str, tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]] = {}
        for index in range(frames):
            frame = native.view[index]
            digest = hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest()
            if digest not in seen:  # identical frames (a still cine) are read once
                grey = ocr.display_grey(frame, native.photometric, native.bits_stored, native.signed)
                words = text_words(ocr.read_words(grey, 0), settings.min_confidence)
                review.frames_read += 1
                review.words_found += len(words)
                blank, keep = decide(words, matcher)
                seen[digest] = (_merged([_clip(b, rows, columns) for b in blank]),
                                [_clip(b, rows, columns) for b in keep])
            blank_boxes, keep_boxes = seen[digest]
            if blank_boxes:
                mask = np.zeros((rows, columns), dtype=bool)
                for x, y, width, height in blank_boxes:
                    mask[y:y + height, x:x + width] = True
                native.blank(mask, index)
            boxes[index] += blank_boxes
            kept[index] += keep_boxes
        review.words_kept = sum(len(frame) for frame in kept)


def pixel_plan(ds: Dataset, sop_class: str, profile: Profile) -> PixelPlan | None:
    """What ``ds``'s pixels need under ``profile`` (None: nothing; the caller checks the risk)."""
    region = matching_region(ds, sop_class, profile.pixel_regions)
    read = profile.ocr is not None and selected(profile.ocr, ds, sop_class)
    if region is None and not read:
        return None
    return PixelPlan(profile, region, read)


# -- deciding what to blank ----
def is_text(word: ocr.Word, min_confidence: float) -> bool:
    """Whether a word Tesseract read is text a person could read, not image texture: at least
    MIN_WORD_HEIGHT pixels high, at ``min_confidence`` or above (a word of LONG_WORD letters or digits
    at LONG_WORD_CONFIDENCE: texture rarely reads as one), one or two characters only when Tesseract is sure."""
    if word.box[3] < MIN_WORD_HEIGHT:
        return False
    letters = sum(c.isalnum() for c in word.text)
    if letters >= LONG_WORD:
        return word.confidence >= LONG_WORD_CONFIDENCE
    return word.confidence >= min_confidence and (letters >= 3 or word.confidence >= SURE)


def text_words(words: list[ocr.Word], min_confidence: float) -> list[ocr.Word]:
    """The words that are text: those :func:`is_text` accepts, then any word that looks like screen
    text (digits or capitals, ALIGNED_CONFIDENCE or more) of the same height (within ALIGNED pixels) as an accepted word and in line
    with it (same top, same left or same right edge): the columns and rows a screen writes its
    text in, read with less confidence (e.g. "78F78" under a hospital's name)."""
    accepted = [w for w in words if is_text(w, min_confidence)]
    candidates = [w for w in words if w not in accepted and _screen_word(w)]
    changed = True
    while changed and candidates:
        changed = False
        for word in list(candidates):
            if any(_aligned(word.box, other.box) for other in accepted):
                accepted.append(word)
                candidates.remove(word)
                changed = True
    return accepted


def _screen_word(word: ocr.Word) -> bool:
    """A word read with little confidence that still looks like screen text: digits or capitals
    (texture reads as short lower-case words)."""
    text = "".join(c for c in word.text if c.isalnum())
    return (word.box[3] >= MIN_WORD_HEIGHT and word.confidence >= ALIGNED_CONFIDENCE and len(text) >= 2
            and (any(c.isdigit() for c in text) or (len(text) >= 3 and text.isupper())))


def _aligned(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    if abs(a[3] - b[3]) > ALIGNED:
        return False
    return abs(a[1] - b[1]) <= ALIGNED or abs(a[0] - b[0]) <= ALIGNED or \
        abs(a[0] + a[2] - b[0] - b[2]) <= ALIGNED


class IdentityMatcher:
    """Finds identity in OCR text: the object's tokens and the deny-list, dates and ID-like words,
    compared upper-case with the letters OCR confuses with digits folded (O 0, I L 1, S 5, B 8, Z 2)."""

    def __init__(self, tokens: IdentityTokens | None, deny: Iterable[str]) -> None:
        own = tuple(tokens.own) if tokens is not None else ()
        folded = tuple(sorted({fold(t) for t in (*own, *deny) if t.strip()}))
        self.pattern = token_pattern(folded) if folded else None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text`` (a line) that hold identity."""
        found = []
        folded = fold(text)
        if self.pattern is not None:
            found += [m.span() for m in self.pattern.finditer(folded)]
        found += [m.span() for m in _DATE.finditer(folded)]
        found += [m.span() for m in _DATE.finditer(text.upper())]
        for match in re.finditer(r"\S+", folded):
            word = match.group().strip(".,;:()[]")
            digits = sum(c.isdigit() for c in word)
            if digits >= 5 or (digits >= 3 and len(word) >= 6 and any(c.isalpha() for c in word)):
                found.append(match.span())
        return found


def fold(text: str) -> str:
    return text.upper().translate(_FOLD)


def decide(words: list[ocr.Word], matcher: IdentityMatcher | None
           ) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]:
    """The boxes to blank and the boxes of text kept.  Every word (``matcher`` None): each line
    of words is blanked as one box; identity: the words that hold identity."""
    lines: dict[tuple[int, int, int, int], list[ocr.Word]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word)
    blank, keep = [], []
    for line in lines.values():
        line.sort(key=lambda w: w.box[0])
        if matcher is None:
            blank += _line_boxes(line)
            continue
        text, starts = "", []
        for word in line:
            starts.append(len(text))
            text += word.text + " "
        spans = matcher.spans(text)
        for word, start in zip(line, starts):
            end = start + len(word.text)
            if any(s < end and start < e for s, e in spans):
                blank.append(_padded(word.box))
            else:
                keep.append(word.box)
    keep = [box for box in keep if not any(_overlap(box, b) > 0.5 for b in blank)]
    return blank, keep


def _padded(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, width, height = box
    pad = max(2, height // 3)
    return (x - pad, y - pad, width + 2 * pad, height + 2 * pad)


def _line_boxes(line: list[ocr.Word]) -> list[tuple[int, int, int, int]]:
    """A line's words as boxes, words closer than three character heights joined into one."""
    out: list[tuple[int, int, int, int]] = []
    for word in line:
        box = _padded(word.box)
        if out:
            x, y, width, height = out[-1]
            if box[0] - (x + width) < 3 * word.box[3]:
                right, bottom = max(x + width, box[0] + box[2]), max(y + height, box[1] + box[3])
                top = min(y, box[1])
                out[-1] = (x, top, right - x, bottom - top)
                continue
        out.append(box)
    return out


def _clip(box: tuple[int, int, int, int], rows: int, columns: int) -> tuple[int, int, int, int]:
    x, y, width, height = box
    x0, y0 = min(max(0, x), columns), min(max(0, y), rows)
    x1, y1 = min(max(0, x + width), columns), min(max(0, y + height), rows)
    return (x0, y0, x1 - x0, y1 - y0)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The share of ``a``'s area that ``b`` covers."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, width) * max(0, height) / max(1, a[2] * a[3])


def _merged(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Boxes that touch or overlap joined into one (the regions a person sees)."""
    out = [b for b in boxes if b[2] > 0 and b[3] > 0]
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if a[0] <= b[0] + b[2] and b[0] <= a[0] + a[2] and a[1] <= b[1] + b[3] and b[1] <= a[1] + a[3]:
                    x, y = min(a[0], b[0]), min(a[1], b[1])
                    right, bottom = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
                    out[i] = (x, y, right - x, bottom - y)
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return sorted(out, key=lambda b: (b[1], b[0]))


# -- the review ------------------------------------------------------------------------------
def _thumbnails(native: NativePixels, boxes: list[list[tuple[int, int, int, int]]], limit: int) -> list[str]:
    """PNG data URIs of each region's surroundings, from the pixels as they are now (blanked)."""
    out: list[str] = []
    greys: dict[int, np.ndarray] = {}
    for index, frame in enumerate(boxes):
        for x, y, width, height in frame:
            if len(out) >= limit:
                return out
            if index not in greys:
                greys[index] = ocr.display_grey(native.view[index], native.photometric,
                                                native.bits_stored, native.signed)
            grey = greys[index]
            margin = max(8, height)
            crop = grey[max(0, y - margin):y + height + margin, max(0, x - margin):x + width + margin]
            out.append(png_data_uri(crop))
    return out


def png_data_uri(grey: np.ndarray) -> str:
    """An 8-bit grey image as a PNG data URI, at most THUMBNAIL_WIDTH pixels wide."""
    image = Image.fromarray(np.ascontiguousarray(grey))
    if image.width > THUMBNAIL_WIDTH:
        image = image.resize((THUMBNAIL_WIDTH, max(1, image.height * THUMBNAIL_WIDTH // image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
