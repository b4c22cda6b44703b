"""Blank burned-in text: the profile's pixel regions, written into native Pixel Data in place.

Only the bytes of the pixels inside a region's boxes change (every frame, every sample); the rest
of Pixel Data, its length and padding stay byte for byte.  Encapsulated (compressed) Pixel Data is
never decoded: an object that needs blanking in that form is quarantined with what to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID, UID_dictionary

from deid.errors import ObjectError
from deid.profile.model import PixelRegion

PIXEL_DATA = 0x7FE00010
_SAFE_WORD = re.compile(r"^[A-Z0-9_ ]{1,16}$")
# (attribute keyword, region key): what a region's match is compared with
_MATCH_ATTRIBUTES = (("Modality", "modality"), ("Manufacturer", "manufacturer"),
                     ("ManufacturerModelName", "model"),
                     ("SecondaryCaptureDeviceManufacturer", "capture_manufacturer"),
                     ("SecondaryCaptureDeviceManufacturerModelName", "capture_model"),
                     ("Rows", "rows"), ("Columns", "columns"))


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return str(value if value is not None else "").strip().upper()


def matching_region(ds: Dataset, sop_class: str, regions: Sequence[PixelRegion]) -> PixelRegion | None:
    """The first region whose every condition holds for ``ds`` (values compared upper-cased)."""
    if not regions:
        return None
    values = {"sop_class": sop_class}
    for keyword, key in _MATCH_ATTRIBUTES:
        values[key] = _text(ds, keyword)
    for region in regions:
        if all(values[key] in accepted for key, accepted in region.match.items()):
            return region
    return None


def describe_object(ds: Dataset, sop_class: str) -> str:
    """What a person needs to write a region for this object, without any patient value:
    SOP class keyword, modality (when it is a plain code) and image size."""
    name = UID_dictionary.get(sop_class, ("", "", "", "", sop_class))[4] or sop_class
    parts = [f"SOP class {name}"]
    modality = _text(ds, "Modality")
    if _SAFE_WORD.match(modality):
        parts.append(f"modality {modality}")
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if isinstance(rows, int) and isinstance(columns, int):
        parts.append(f"{columns}x{rows} pixels")
    return ", ".join(parts)


def _refuse(code: str, message: str, path: str = "(7FE0,0010)") -> ObjectError:
    return ObjectError(code, message, stage="pixels", path=path)


def _fill(photometric: str, samples: int, bits_stored: int, signed: bool) -> list[int]:
    """The value written into blanked pixels: black for the photometric interpretation."""
    low = -(1 << (bits_stored - 1)) if signed else 0
    high = (1 << (bits_stored - 1)) - 1 if signed else (1 << bits_stored) - 1
    if photometric == "MONOCHROME1":
        return [high]
    if photometric in ("MONOCHROME2", "PALETTE COLOR"):
        return [low]
    if photometric == "RGB":
        return [low] * samples
    if photometric == "YBR_FULL":
        middle = 0 if signed else 1 << (bits_stored - 1)
        return [low, middle, middle]
    raise _refuse("pixels-unsupported", f"blanking {photometric or 'this'} photometric interpretation in "
                  "native form is not supported; convert the object to RGB or MONOCHROME2 and run again",
                  "(0028,0004)")


@dataclass
class NativePixels:
    """Native Pixel Data as a writable array view ``(frames, rows, columns, samples)`` over a copy
    of its bytes, with what is needed to write it back as it was (VR, byte order, length)."""

    buffer: bytearray
    view: np.ndarray
    photometric: str
    bits_stored: int
    signed: bool
    vr: str | None  # None: implicit VR, as read
    implicit: bool
    little: bool

    @property
    def frames(self) -> int:
        return int(self.view.shape[0])

    def fill(self) -> list[int]:
        """The value written into blanked pixels (per sample)."""
        return _fill(self.photometric, int(self.view.shape[3]), self.bits_stored, self.signed)

    def blank(self, mask: np.ndarray, frame: int | None = None) -> int:
        """Blank the pixels where ``mask`` (``(rows, columns)``) is True, in every frame or in
        ``frame`` only; returns how many pixels were blanked."""
        fill = self.fill()
        view = self.view if frame is None else self.view[frame:frame + 1]
        for sample in range(view.shape[3]):
            view[:, mask, sample] = fill[sample % len(fill)]
        return int(mask.sum()) * view.shape[0]

    def write_back(self, ds: Dataset) -> None:
        """Put the (blanked) bytes back into ``ds`` as a raw element of the same VR and byte order."""
        new = bytes(self.buffer)
        ds._dict[BaseTag(PIXEL_DATA)] = RawDataElement(
            BaseTag(PIXEL_DATA), self.vr, len(new), new, 0, self.implicit, self.little, True, False)


def is_encapsulated(ds: Dataset) -> bool:
    """Whether ``ds``'s Pixel Data is compressed (an encapsulated transfer syntax or undefined length)."""
    syntax = UID(str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or ""))
    elem = ds._dict.get(BaseTag(PIXEL_DATA))
    return bool(syntax.is_encapsulated or getattr(elem, "is_undefined_length", False)
                or getattr(elem, "length", 0) == 0xFFFFFFFF)


def native_pixels(ds: Dataset, what: str = "a pixel region matches") -> NativePixels:
    """``ds``'s native Pixel Data as :class:`NativePixels`; ObjectError for what cannot be blanked."""
    syntax = UID(str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or ""))
    elem = ds._dict.get(BaseTag(PIXEL_DATA))
    if elem is None:
        raise _refuse("pixels-unsupported", f"{what} but the object has no Pixel Data "
                      "(7FE0,0010) to blank; review the object")
    if is_encapsulated(ds):
        raise _refuse("pixels-encapsulated",
                      "the pixels must be blanked but Pixel Data is compressed (encapsulated) in a form "
                      "deid cannot decode here; convert the file to a native transfer syntax (e.g. "
                      "dcmdjpeg, dcmdrle or gdcmconv --raw) and run it again")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    allocated = int(ds.get("BitsAllocated", 0) or 0)
    stored = int(ds.get("BitsStored", allocated) or allocated)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    planar = int(ds.get("PlanarConfiguration", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    photometric = _text(ds, "PhotometricInterpretation")
    if allocated not in (8, 16, 32) or not 1 <= stored <= allocated or samples not in (1, 3) \
            or rows < 1 or columns < 1 or frames < 1 or planar not in (0, 1):
        raise _refuse("pixels-unsupported", "the image layout (Bits Allocated, Samples per Pixel, Rows, "
                      "Columns, Planar Configuration) is not one deid can blank (8/16/32 bits, 1 or 3 "
                      "samples); review the object", "(0028,0100)")
    if isinstance(elem, RawDataElement):
        data, little, implicit = elem.value, elem.is_little_endian, elem.is_implicit_VR
    else:
        data, little, implicit = elem.value, syntax.is_little_endian, syntax.is_implicit_VR
    vr = elem.VR
    if not little and allocated == 8 and vr == "OW":
        raise _refuse("pixels-unsupported", "8-bit pixels in OW in big endian are not supported; convert "
                      "the file to Explicit VR Little Endian and run it again")
    size = allocated // 8
    count = rows * columns * samples * frames
    if not isinstance(data, (bytes, bytearray)) or len(data) < count * size:
        raise _refuse("pixels-size-mismatch", "Pixel Data is shorter than Rows x Columns x Samples x Frames "
                      "says; the file may be truncated: fetch it again")
    _fill(photometric, samples, stored, signed)  # refuses a photometric interpretation it cannot fill
    buffer = bytearray(data)
    dtype = np.dtype(f"{'<' if little else '>'}{'i' if signed else 'u'}{size}")
    pixels = np.frombuffer(buffer, dtype=dtype, count=count)
    if samples == 1:
        view = pixels.reshape(frames, rows, columns, 1)
    elif planar == 0:
        view = pixels.reshape(frames, rows, columns, samples)
    else:
        view = pixels.reshape(frames, samples, rows, columns).transpose(0, 2, 3, 1)
    return NativePixels(buffer, view, photometric, stored, signed, vr, implicit, little)


def region_mask(region: PixelRegion, rows: int, columns: int) -> np.ndarray:
    """The region's boxes as a ``(rows, columns)`` mask, clipped to the image."""
    blanked = np.zeros((rows, columns), dtype=bool)
    for x, y, width, height in region.boxes:
        blanked[min(y, rows):min(y + height, rows), min(x, columns):min(x + width, columns)] = True
    return blanked


def blank_region(ds: Dataset, region: PixelRegion) -> int:
    """Blank the region's boxes in every frame of ``ds``'s native Pixel Data; returns pixels per frame."""
    native = native_pixels(ds)
    _, rows, columns, _ = native.view.shape
    blanked = region_mask(region, rows, columns)
    if not blanked.any():
        raise _refuse("region-outside-image", f"the pixel region {region.name!r} lies outside this "
                      f"{columns}x{rows} image, so nothing would be blanked; correct the region's boxes "
                      "or its match (rows/columns)")
    native.blank(blanked)
    native.write_back(ds)
    return int(blanked.sum())
