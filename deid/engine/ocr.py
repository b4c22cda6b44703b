"""Find text in a frame with Tesseract (offline: the ``tesseract`` program and its English data).

A frame is turned into 8-bit grey for display (monochrome scaled over its stored range,
MONOCHROME1 inverted; colour as its luminance),
then read in two forms, one above the other on one sheet (one Tesseract call per frame): the grey
image inverted (dark text on light, as Tesseract prefers), and the bright pixels alone, black on
white (burned-in text is drawn light; this form is enlarged for frames under 1100 pixels, so that
small text is read too).  The words
of both readings are returned with their boxes in frame pixels; nothing is kept of the text
beyond the engine's own decision (the caller gets the words, never logs them).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from deid.errors import ObjectError

#: Tesseract's page segmentation: 11 is sparse text (scattered annotations, no page layout).
PAGE_SEGMENTATION = 11
#: Seconds one Tesseract call may take before the object is quarantined (ocr-failed).
TIMEOUT_SECONDS = 60
#: The bright-pixels reading of frames whose longer side is below this is enlarged x2 (small
#: text, 9 to 12 pixels high, reads much better; the grey reading enlarged gained nothing).
ENLARGE_BELOW = 1100
#: Brightest-pixels reading: a pixel counts as ink at this fraction of full scale or above.
BRIGHT_THRESHOLD = 0.6
#: White rows between the readings on the sheet Tesseract reads.
GAP = 32

# one Tesseract thread per call: the workers are the parallelism (and results stay deterministic)
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@dataclass(frozen=True)
class Word:
    """One word Tesseract read: its text, its box ``(x, y, width, height)`` in frame pixels, its
    confidence (0-100), and the line it belongs to (reading, block, paragraph, line)."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float
    line: tuple[int, int, int, int]


def _unavailable(why: str) -> ObjectError:
    return ObjectError("ocr-not-available", f"the profile reads this object's pixels for burned-in text "
                       f"(pixels.ocr) but {why}; install Tesseract with its English data (Debian: "
                       "apt-get install tesseract-ocr tesseract-ocr-eng) and run it again",
                       stage="pixels", path="(7FE0,0010)")


@lru_cache(maxsize=1)
def tesseract_version() -> str:
    """The version of the ``tesseract`` program; ObjectError ``ocr-not-available`` without it
    (or without its English data)."""
    import pytesseract  # type: ignore[import-untyped]

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise _unavailable("the tesseract program is not installed")
    try:
        version = str(pytesseract.get_tesseract_version())
        languages = pytesseract.get_languages(config="")
    except Exception as exc:  # the program is there but broken
        raise _unavailable(f"tesseract does not run ({exc.__class__.__name__})") from None
    if "eng" not in languages:
        raise _unavailable("Tesseract's English data (eng) is not installed")
    return version


def display_grey(frame: np.ndarray, photometric: str, bits_stored: int, signed: bool) -> np.ndarray:
    """A frame ``(rows, columns, samples)`` as 8-bit grey the way a viewer shows it, light = bright."""
    if frame.shape[2] == 1:
        values = frame[..., 0].astype(np.int64)
        if not signed and bits_stored < frame.dtype.itemsize * 8:
            values &= (1 << bits_stored) - 1  # bits above Bits Stored are not pixels (old overlays)
        low, high = int(values.min()), int(values.max())
        if high == low:
            grey = np.zeros(values.shape, dtype=np.uint8)
        else:
            grey = ((values - low) * 255 // (high - low)).astype(np.uint8)
        return 255 - grey if photometric == "MONOCHROME1" else grey
    rgb = frame.astype(np.int64)
    if photometric.startswith("YBR"):
        from pydicom.pixels import convert_color_space

        rgb = convert_color_space(frame.astype(np.uint8), "YBR_FULL", "RGB").astype(np.int64)
    if bits_stored > 8:
        rgb = rgb * 255 // ((1 << bits_stored) - 1)
    luminance = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) // 1000
    return np.clip(luminance, 0, 255).astype(np.uint8)


def _scale_for(grey: np.ndarray) -> int:
    """Frames smaller than ENLARGE_BELOW are read twice as large (small text reads better)."""
    return 2 if max(grey.shape) < ENLARGE_BELOW else 1


def readings(grey: np.ndarray) -> list[tuple[Image.Image, int]]:
    """The images Tesseract reads for one frame, each with the factor it was enlarged by: the grey
    image inverted, as it is, and its bright pixels as black on white, enlarged when small."""
    scale = _scale_for(grey)
    bright = Image.fromarray(np.where(grey >= int(255 * BRIGHT_THRESHOLD), 0, 255).astype(np.uint8))
    if scale > 1:
        bright = bright.resize((bright.width * scale, bright.height * scale), Image.Resampling.NEAREST)
    return [(Image.fromarray(255 - grey), 1), (bright, scale)]


def _sheet(images: list[Image.Image]) -> tuple[Image.Image, list[int]]:
    """The readings one above the other on white, GAP pixels apart (one Tesseract call reads them
    all: a call costs about 0.07 CPU seconds before it reads anything); their top rows."""
    width = max(image.width for image in images)
    tops, top = [], 0
    for image in images:
        tops.append(top)
        top += image.height + GAP
    sheet = Image.new("L", (width, top - GAP), 255)
    for image, y in zip(images, tops):
        sheet.paste(image, (0, y))
    return sheet, tops


def read_words(grey: np.ndarray, min_confidence: float) -> list[Word]:
    """Every word Tesseract reads in an 8-bit grey frame (at ``min_confidence`` or above, with at
    least one letter or digit), from every reading; ObjectError ``ocr-failed`` when it fails."""
    import pytesseract  # type: ignore[import-untyped]

    tesseract_version()
    images = readings(grey)
    sheet, tops = _sheet([image for image, _ in images])
    try:
        data = pytesseract.image_to_data(
            sheet, lang="eng", config=f"--psm {PAGE_SEGMENTATION} --oem 1",
            output_type=pytesseract.Output.DICT, timeout=TIMEOUT_SECONDS)
    except Exception as exc:  # TesseractError, a timeout (RuntimeError), the program gone
        raise ObjectError("ocr-failed", f"Tesseract failed on this object's pixels "
                          f"({exc.__class__.__name__}); check the tesseract installation, then run "
                          "the object again", stage="pixels", path="(7FE0,0010)") from None
    words: list[Word] = []
    for i, text in enumerate(data["text"]):
        text = (text or "").strip()
        confidence = float(data["conf"][i])
        if not text or confidence < min_confidence or not any(c.isalnum() for c in text):
            continue
        top = data["top"][i]
        number = max(n for n, y in enumerate(tops) if y <= top)  # the reading the word is in
        scale = images[number][1]
        x, y = data["left"][i] // scale, (top - tops[number]) // scale
        width = -(-data["width"][i] // scale)
        height = -(-data["height"][i] // scale)
        line = (number, data["block_num"][i], data["par_num"][i], data["line_num"][i])
        words.append(Word(text, (x, y, width, height), confidence, line))
    return words
