"""The input check before the rules: an image must have what its pixels need to be read.

A file cut at an element boundary parses cleanly, but loses everything after the cut; DICOM's
ascending tag order puts the Image Pixel module (group 0028) and Pixel Data (7FE0) last, so a cut
shows there. Checked, from the IOD tables of ``deid.standard``: the Type 1 attributes of the
IOD's pixel module (Image Pixel, NM Image Pixel, Floating Point / Double Floating Point Image
Pixel) at the top level, present and not empty, and one of Pixel Data, Float Pixel Data or Double
Float Pixel Data (unless Pixel Data Provider URL stands for it). The module is checked when the
IOD makes it mandatory, or, for a conditional one or a SOP class without an IOD table here, when
the object has Rows, Columns or pixel data; in an IOD without a pixel module (an RT Structure Set,
an SR), pixel data is held to the Image Pixel module: pixel data no one can read as an image is
what a damaged header leaves (a Patient ID under Pixel Data's tag), never released as it came.

Uncompressed Pixel Data must also fill the image its attributes describe (rows x columns x
samples x bits x frames, as pydicom's ``get_expected_length``): shorter, no reader can show it,
and a damaged transfer syntax can make an encapsulated stream, with header bytes after it, pass
for it.  A compressed stream's length says nothing and is not measured.

Other modules' Type 1 attributes are not checked here: real, valid objects from many vendors lack
some (Frame of Reference UID, Image Plane in Secondary Captures, Number of Frames...), and what
de-identification changes is held to the IOD after the rules (``deid.checks.release``). The four
identifiers (SOP Class, SOP Instance, Study and Series UID) have their own code,
``missing-identifier`` (``deid.engine.deidentifier``).
"""

from __future__ import annotations

from functools import cache, lru_cache

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from deid import standard
from deid.checks.iod import is_empty
from deid.errors import ObjectError
from deid.io.reader import peek_text, peek_value
from deid.io.tagkeys import tag_key
from deid.profile.tags import format_tag

# (the scan's key objects: found by identity, deid.io.tagkeys)
PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA = map(tag_key, (0x7FE00010, 0x7FE00008,
                                                                   0x7FE00009))
PIXEL_DATA_PROVIDER_URL = tag_key(0x00287FE0)
ROWS, COLUMNS = tag_key(0x00280010), tag_key(0x00280011)
SAMPLES_PER_PIXEL, BITS_ALLOCATED = tag_key(0x00280002), tag_key(0x00280100)
NUMBER_OF_FRAMES = tag_key(0x00280008)
TRANSFER_SYNTAX = 0x00020010
_PIXEL_DATA_TAGS = (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA)
_INTEGER_MODULES = ("ImagePixel", "NMImagePixel")
# the pixel module an object's pixel data element belongs to (Parametric Map has all three, as C)
_BY_PIXEL_DATA = {FLOAT_PIXEL_DATA: "FloatingPointImagePixel",
                  DOUBLE_FLOAT_PIXEL_DATA: "DoubleFloatingPointImagePixel"}


@cache
def _type1_top_level(module: str) -> tuple[int, ...]:
    """A module's Type 1 attributes at the top level, pixel data elements left out."""
    return tuple(tag_key(tag) for path, tag, typ in standard.module_attribute_rows(module)
                 if not path and typ == "1" and tag not in _PIXEL_DATA_TAGS)


@lru_cache(maxsize=256)  # (bounded: the SOP class is the input's, any a hostile peer makes up)
def _pixel_modules(sop_class_uid: str) -> tuple[tuple[str, ...], bool]:
    """The IOD's integer pixel modules, and whether a pixel module is mandatory in it. An unknown
    SOP class: Image Pixel, not mandatory."""
    modules = standard.iod_modules(sop_class_uid)
    if not modules:
        return ("ImagePixel",), False
    pixel = [(module, usage) for _ie, module, usage in modules
             if module in _INTEGER_MODULES or module in _BY_PIXEL_DATA.values()]
    integer = tuple(module for module, _usage in pixel if module in _INTEGER_MODULES)
    return integer, any(usage == "M" for _module, usage in pixel)


def incomplete_paths(ds: Dataset, sop_class_uid: str) -> list[str]:
    """Element paths of the pixel attributes ``ds`` lacks or has empty (``[]``: complete)."""
    integer, mandatory = _pixel_modules(sop_class_uid)
    present = ds._dict
    if not mandatory and not any(tag in present for tag in (ROWS, COLUMNS, *_PIXEL_DATA_TAGS)):
        return []
    floating = next((tag for tag in _BY_PIXEL_DATA if tag in present), None)
    modules = (_BY_PIXEL_DATA[floating],) if floating is not None else integer
    if not modules:  # an IOD without a pixel module (SR, RT Plan, ...): pixel data only as an image
        if not any(tag in present for tag in _PIXEL_DATA_TAGS):
            return []
        modules = ("ImagePixel",)
    required = dict.fromkeys(tag for module in modules for tag in _type1_top_level(module))
    missing = [format_tag(tag) for tag in required if _lacks(ds, tag)]
    if all(_lacks(ds, tag) for tag in _PIXEL_DATA_TAGS) and _lacks(ds, PIXEL_DATA_PROVIDER_URL):
        missing.append(format_tag(PIXEL_DATA))
    return missing


def _lacks(ds: Dataset, tag: int) -> bool:
    elem = ds._dict.get(tag)
    return elem is None or is_empty(ds, tag, elem)


def check_complete(ds: Dataset) -> None:
    """Raise ObjectError ``incomplete-object`` naming the first pixel attribute the input lacks."""
    sop_class_uid = peek_text(ds, 0x00080016).strip()
    missing = incomplete_paths(ds, sop_class_uid)
    if missing:
        raise ObjectError(
            "incomplete-object",
            f"the object lacks {len(missing)} attribute(s) its pixels need (Type 1 of its IOD's "
            "pixel module, or the pixel data itself): it may have been cut short or damaged in a "
            "copy or transfer; fetch it again from the source",
            stage="read",
            path=missing[0],
        )
    short = short_pixel_data(ds)
    if short is not None:
        held, needed = short
        raise ObjectError(
            "incomplete-object",
            f"its Pixel Data holds {held} bytes, where its rows, columns, samples, bits and frames "
            f"need {needed} (uncompressed): it may have been cut short or damaged in a copy or "
            "transfer; fetch it again from the source",
            stage="read",
            path=format_tag(PIXEL_DATA),
        )


def short_pixel_data(ds: Dataset) -> tuple[int, int] | None:
    """(bytes held, bytes needed) when ``ds``'s Pixel Data, in an uncompressed transfer syntax,
    is shorter than its image: no reader can show it, and what it holds is not that image (a
    damaged syntax can make an encapsulated stream, and the header bytes after it, pass for
    it).  None when it is long enough, compressed, or not to be measured (the attributes
    unreadable: other checks name them)."""
    elem = ds._dict.get(PIXEL_DATA)
    value = getattr(elem, "value", None)
    if not isinstance(value, (bytes, bytearray, memoryview)):
        return None
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta._dict.get(TRANSFER_SYNTAX), "value", None) if meta is not None else None
    if syntax is not None and _compressed(str(syntax)):
        return None
    needed = _image_bytes(ds)
    return (len(value), needed) if needed is not None and len(value) < needed else None


@lru_cache(maxsize=64)  # (bounded: the syntax is the input's)
def _compressed(syntax: str) -> bool:
    return UID(syntax).is_compressed


def _us(ds: Dataset, tag: int) -> object:
    """An US attribute's value: from its two raw bytes (as read, explicit US or implicit), else
    as :func:`peek_value` reads it (raw elements stay raw: the encoder copies their bytes)."""
    elem = ds._dict.get(tag)
    if type(elem) is RawDataElement and elem.VR in ("US", None) and \
            isinstance(elem.value, bytes) and len(elem.value) == 2:
        return int.from_bytes(elem.value, "little" if elem.is_little_endian else "big")
    return peek_value(ds, tag)


def _image_bytes(ds: Dataset) -> int | None:
    """The bytes an uncompressed image of ``ds``'s attributes fills (as pydicom's
    ``get_expected_length``, from whole numbers only: a damaged Rows read as text is no
    number to multiply); None when one is not a positive whole number."""
    numbers = []
    for tag in (ROWS, COLUMNS, SAMPLES_PER_PIXEL, BITS_ALLOCATED):
        value = _us(ds, tag)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return None
        numbers.append(value)
    try:
        frames = int(str(peek_value(ds, NUMBER_OF_FRAMES) or 1)) if NUMBER_OF_FRAMES in ds._dict else 1
    except (TypeError, ValueError):
        return None
    if frames <= 0:
        return None
    rows, columns, samples, bits = numbers
    pixels = rows * columns * samples * frames
    if samples == 3 and peek_text(ds, 0x00280004).strip() == "YBR_FULL_422":
        pixels = pixels // 3 * 2  # two values per pixel: Y for each, Cb and Cr shared by two
    return (pixels * bits + 7) // 8
