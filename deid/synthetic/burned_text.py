"""Images with names, IDs and dates drawn into real pixel data, for the OCR blanking tests and bench.

Backgrounds are real pixels: pydicom's ultrasound test file (the scan area, where it has no text
of its own), its CT test slice (enlarged), and deid's CT phantom.  Text is drawn with Pillow in
the fonts found here (DejaVu Sans and Sans Mono when installed, else Pillow's own font), at
several sizes, positions and contrasts, anti-aliased into the stored pixel values; each drawn
string's box and ink are returned, so a test can tell what blanking should have covered.  A
case may have no text at all (what OCR must leave alone).
"""

from __future__ import annotations

import glob
import random
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, UltrasoundImageStorage

from deid.synthetic import modules
from deid.synthetic.identity import SyntheticPatient, make_patient
from deid.synthetic.phantom import SliceGeometry, hounsfield_slice

_FONT_GLOBS = ("/usr/share/fonts/**/DejaVuSans.ttf", "/usr/share/fonts/**/DejaVuSansMono.ttf",
               "/usr/share/fonts/**/DejaVuSans-Bold.ttf")


@dataclass
class DrawnText:
    """One string drawn into a case: the string, its box ``(x, y, width, height)``, its ink."""

    text: str
    box: tuple[int, int, int, int]
    kind: str  # name | id | date | other


@dataclass
class TextCase:
    """A dataset with text drawn into its pixels (or none), what was drawn and where its ink is."""

    name: str
    dataset: Dataset
    drawn: list[DrawnText] = field(default_factory=list)
    ink: np.ndarray | None = None  # (rows, columns) True where a glyph is


@lru_cache(maxsize=1)
def fonts() -> tuple[str, ...]:
    """The TrueType font files found here (DejaVu), possibly none (then Pillow's own font)."""
    found: list[str] = []
    for pattern in _FONT_GLOBS:
        found += sorted(glob.glob(pattern, recursive=True))[:1]
    return tuple(dict.fromkeys(found))


def _font(choice: int, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    files = fonts()
    if choice < len(files):
        return ImageFont.truetype(files[choice], size)
    return ImageFont.load_default(size=size)  # Pillow's own font (FreeType), no file needed


def _us_background(size: int) -> np.ndarray:
    """The scan area of pydicom's ultrasound test image (it has no text there) on black, as an
    ultrasound screen shows it, RGB, ``size`` square."""
    import pydicom
    from pydicom.data import get_testdata_file

    rgb = pydicom.dcmread(str(get_testdata_file("US1_UNCR.dcm"))).pixel_array[112:336, 48:592]
    canvas = np.zeros((size, size, 3), dtype=np.int64)
    top, height = size // 5, min(rgb.shape[0] * size // 512, size * 3 // 5)
    scaled = np.asarray(Image.fromarray(rgb).resize((size * 15 // 16, height)), dtype=np.int64)
    canvas[top:top + height, size // 32:size // 32 + scaled.shape[1]] = scaled
    return canvas


def _ct_background(size: int) -> np.ndarray:
    """pydicom's CT test slice (128 x 128, 16-bit) enlarged to ``size`` by repetition, stored values."""
    import pydicom
    from pydicom.data import get_testdata_file

    ct = pydicom.dcmread(str(get_testdata_file("CT_small.dcm"))).pixel_array.astype(np.int64)
    factor = -(-size // ct.shape[0])
    return np.kron(ct, np.ones((factor, factor), dtype=np.int64))[:size, :size]


def _phantom_background(size: int) -> np.ndarray:
    """deid's CT phantom slice in stored values (HU + 1024), 12 bits."""
    hu = hounsfield_slice(SliceGeometry(size), 3, "P", seed="burned-text")
    return np.clip(hu + 1024, 0, 4095).astype(np.int64)


_OTHER = ("LIVER", "5.0 MHz", "ABDOMEN", "TIS 0.4", "AXIAL 5mm")


def _strings(rng: random.Random, patient: SyntheticPatient) -> list[tuple[str, str, str]]:
    """The patient's own name, ID and a date of theirs, in one of the forms screens write them:
    (label, value, kind); the label ("ID ", "DOB ") is drawn before the value but is not identity."""
    family, _, given = patient.name.partition("^")
    given = given.split("^")[0]
    names = (patient.display_name, f"{family}^{given}", f"{family}, {given}", f"{given.title()} {family.title()}")
    ids = (("ID ", patient.patient_id), ("MRN: ", patient.patient_id), ("", patient.patient_id),
           ("ACC ", patient.accession_number))
    d = rng.choice((patient.study_date, patient.birth_date))
    dates = (f"{d[:4]}-{d[4:6]}-{d[6:]}", f"{d[6:]}/{d[4:6]}/{d[:4]}", d, f"{d[:4]}.{d[4:6]}.{d[6:]}")
    label, value = rng.choice(ids)
    picked = [("", rng.choice(names), "name"), (label, value, "id"), (rng.choice(("", "", "DOB ")),
                                                                      rng.choice(dates), "date")]
    if rng.random() < 0.6:
        picked.append(("", rng.choice(_OTHER), "other"))
    return picked


def _draw(background: np.ndarray, strings: list[tuple[str, str, str]], rng: random.Random, full: int,
          contrast: float, font_choice: int, font_size: int) -> tuple[np.ndarray, list[DrawnText], np.ndarray]:
    """Draw ``strings`` down one side of the image (anti-aliased); the new pixels, the boxes, the ink."""
    rows, columns = background.shape[:2]
    alpha = Image.new("L", (columns, rows), 0)
    draw = ImageDraw.Draw(alpha)
    font = _font(font_choice, font_size)
    right = rng.random() < 0.5
    bottom = rng.random() < 0.35  # the strings start in a top corner, or go up from a bottom one
    over_anatomy = contrast == 1.0 and rng.random() < 0.5  # one string in the middle of the image
    lines = []
    for label, text, kind in strings:
        left, top, x1, y1 = (int(v) for v in draw.textbbox((0, 0), label + text, font=font))
        lines.append((label, text, kind, left, top, x1 - left, y1 - top))
    gap = max(3, font_size // 3)
    y = rng.randint(2, 10) if not bottom else rows - 4 - sum(line[-1] + gap for line in lines)
    drawn = []
    for number, (label, text, kind, left, top, width, height) in enumerate(lines):
        x = columns - width - 4 - rng.randint(0, 12) if right else 4 + rng.randint(0, 12)
        ty = y
        if over_anatomy and number == len(lines) - 1:
            x, ty = (columns - width) // 2 + rng.randint(-20, 20), rows // 2 + rng.randint(-30, 30)
        x = max(0, x)
        draw.text((x - left, ty - top), label + text, fill=255, font=font)
        skip = round(draw.textlength(label, font=font)) if label else 0  # the value's box only
        drawn.append(DrawnText(text, (x + skip, ty, width - skip, height), kind))
        y += height + gap
    a = np.asarray(alpha, dtype=np.float64) / 255.0
    value = full * contrast
    if background.ndim == 3:
        colour = np.array([value, value, value * (0.2 if rng.random() < 0.3 else 1.0)])
        pixels = background * (1 - a[..., None]) + colour * a[..., None]
    else:
        pixels = background * (1 - a) + value * a
    return np.rint(pixels).astype(np.int64), drawn, a > 0.25


def _dataset(patient: SyntheticPatient, pixels: np.ndarray, modality: str, case: str,
             burned_in: str | None) -> Dataset:
    rgb = pixels.ndim == 3
    ds = Dataset()
    sop_class = UltrasoundImageStorage if modality == "US" else SecondaryCaptureImageStorage
    series = patient.series_uid(f"TEXT-{case}")
    modules.secondary_capture(
        ds, patient, sop_class=sop_class, series_uid=series, modality=modality, series_number=900,
        description="Annotated image", body_part="ABDOMEN", capture_device=("ACME", "Viewer 2"),
        comment="image with annotations", burned_in=burned_in)
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.BitsAllocated = 8 if rgb else 16
    ds.BitsStored = 8 if rgb else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    data = np.clip(pixels, 0, 255 if rgb else 4095).astype("<u1" if rgb else "<u2").tobytes()
    ds.PixelData = data
    ds["PixelData"].VR = "OB" if rgb else "OW"
    modules.file_meta(ds, patient, ExplicitVRLittleEndian)
    return ds


def text_cases(count: int = 12, *, size: int = 512, seed: int = 16, blank_every: int = 4) -> list[TextCase]:
    """``count`` cases over the three backgrounds, every ``blank_every``-th without text; each case
    draws its own patient's name, ID and a date (as the object's attributes hold them: identity
    matching can find them), and sometimes other text (kept when only identity is blanked)."""
    rng = random.Random(seed)
    makers = (("us", _us_background, 255, "US"), ("ct", _ct_background, 4095, "OT"),
              ("phantom", _phantom_background, 4095, "OT"))
    cases = []
    for number in range(count):
        label, make, full, modality = makers[number % len(makers)]
        patient = make_patient(500 + number)
        background = make(size)
        name = f"{number:02d}-{label}"
        burned_in = rng.choice(("YES", None))
        if blank_every and number % blank_every == blank_every - 1:
            cases.append(TextCase(name + "-none", _dataset(patient, background, modality, name, burned_in),
                                  [], np.zeros((size, size), dtype=bool)))
            continue
        font_size = rng.choice((13, 16, 20, 26)) * size // 512
        contrast = rng.choice((1.0, 1.0, 0.85, 0.7))
        font_choice = rng.randrange(len(fonts()) + 1)
        strings = _strings(rng, patient)
        pixels, drawn, ink = _draw(background, strings, rng, full, contrast, font_choice, font_size)
        cases.append(TextCase(name, _dataset(patient, pixels, modality, name, burned_in), drawn, ink))
    return cases


@dataclass
class BlankingScore:
    """How blanking fared on cases: drawn strings covered, blanked regions that were text."""

    strings: int = 0
    covered: int = 0  # drawn strings with at least COVERED of their ink inside blanked regions
    regions: int = 0
    on_text: int = 0  # blanked regions that overlap a drawn string
    missed: list[str] = field(default_factory=list)  # "case: kind" of the strings not covered

    @property
    def recall(self) -> float:
        return self.covered / self.strings if self.strings else 1.0

    @property
    def precision(self) -> float:
        return self.on_text / self.regions if self.regions else 1.0

    def add(self, other: BlankingScore) -> None:
        self.strings += other.strings
        self.covered += other.covered
        self.regions += other.regions
        self.on_text += other.on_text
        self.missed += other.missed


COVERED = 0.9


def score(case: TextCase, boxes: list[tuple[int, int, int, int, int]], kinds: tuple[str, ...] = ()) -> BlankingScore:
    """Score the blanked regions ``boxes`` ((frame, x, y, width, height), one frame) against what
    was drawn; ``kinds`` limits the strings that must be covered (e.g. name, id, date)."""
    assert case.ink is not None
    rows, columns = case.ink.shape
    blanked = np.zeros((rows, columns), dtype=bool)
    for _, x, y, width, height in boxes:
        blanked[y:y + height, x:x + width] = True
    result = BlankingScore(regions=len(boxes))
    for drawn in case.drawn:
        x, y, width, height = drawn.box
        if kinds and drawn.kind not in kinds:
            continue
        ink = case.ink[y:y + height, x:x + width]
        share = blanked[y:y + height, x:x + width][ink].mean() if ink.any() else 1.0
        result.strings += 1
        if share >= COVERED:
            result.covered += 1
        else:
            result.missed.append(f"{case.name}: {drawn.kind}")
    for _, x, y, width, height in boxes:
        if any(x < dx + dw + 4 and dx - 4 < x + width and y < dy + dh + 4 and dy - 4 < y + height
               for dx, dy, dw, dh in (d.box for d in case.drawn)):
            result.on_text += 1
    return result
