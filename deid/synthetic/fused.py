"""Fused PET/CT screenshots (Secondary Capture), with the patient's name and ID burned into the pixels.

Like a viewer's screen grab in Lung-PET-CT-Dx: the CT phantom in grey with PET uptake in a hot
colour scale over it, and text in known boxes (:func:`burned_in_boxes`): name and ID top left,
institution and study date bottom left.  Variants (grey, 16-bit, planar, multi-frame) exercise
pixel blanking on every native layout.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
)

from deid.synthetic import glyphs, modules
from deid.synthetic.identity import SyntheticPatient, make_patient
from deid.synthetic.phantom import TUMOUR_CENTRE_MM, SliceGeometry, hounsfield_slice

#: The workstation that made the screenshot (Secondary Capture Device) and the scanner.
CAPTURE_MANUFACTURER, CAPTURE_MODEL = "SIEMENS", "syngo.via"
SCANNER_MODEL = "Biograph64"
MODALITY = "OT"
_TUMOUR_SLICE = 3  # the phantom's tumour is in slices 1..5


def lung_patient(group: str = "A", number: int = 1) -> SyntheticPatient:
    """A Lung-PET-CT-Dx subject: Patient ID ``Lung_Dx-<group><number>`` (A, B, E, G: the diagnosis)."""
    if group not in "ABEG" or len(group) != 1:
        raise ValueError(f"the diagnosis group is one of A, B, E, G, got {group!r}")
    return make_patient(200 + "ABEG".index(group) * 50 + number, patient_id=f"Lung_Dx-{group}{number:04d}")


def _scale(size: int) -> int:
    return max(1, size // 256)


def burned_in_boxes(size: int) -> list[tuple[int, int, int, int]]:
    """The (x, y, width, height) boxes that hold burned-in text in a ``size`` x ``size`` screenshot."""
    s = _scale(size)
    line = (glyphs.HEIGHT + 2) * s
    return [(0, 0, min(size, 160 * s), 2 * line + 4 * s), (0, size - line - 4 * s, min(size, 160 * s), line + 4 * s)]


def _text_lines(patient: SyntheticPatient) -> tuple[list[str], list[str]]:
    top = [patient.display_name, f"ID {patient.patient_id}"]
    date = patient.study_date
    bottom = [f"VGH {date[:4]}-{date[4:6]}-{date[6:]}"]
    return top, bottom


def _ink(size: int, patient: SyntheticPatient) -> np.ndarray:
    """Where the text's glyphs are, inside :func:`burned_in_boxes`."""
    s = _scale(size)
    ink = np.zeros((size, size), dtype=bool)
    (tx, ty, tw, th), (bx, by, bw, bh) = burned_in_boxes(size)
    top, bottom = _text_lines(patient)
    for lines, (x0, y0, w, h) in ((top, (tx, ty, tw, th)), (bottom, (bx, by, bw, bh))):
        for number, text in enumerate(lines):
            mask = glyphs.text_mask(text, s)
            y = y0 + 2 * s + number * (glyphs.HEIGHT + 2) * s
            height, width = mask.shape
            width, height = min(width, w - 4 * s), min(height, y0 + h - y)
            ink[y : y + height, x0 + 2 * s : x0 + 2 * s + width] |= mask[:height, :width]
    return ink


def _fused_rgb(size: int, index: int, seed: str) -> np.ndarray:
    """CT lung/abdomen window in grey with PET uptake (hot scale) blended over it, uint8 RGB."""
    geometry = SliceGeometry(size)
    hu = hounsfield_slice(geometry, index, "P", seed=seed).astype(np.float64)
    grey = np.clip((hu + 160.0) / 400.0, 0.0, 1.0)
    x, y = geometry.grid()
    cx, cy, _ = TUMOUR_CENTRE_MM
    uptake = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 12.0**2)) * max(0.0, 1 - abs(index - _TUMOUR_SLICE) / 4)
    uptake += 0.15 * (hu > -500)  # background activity in the body
    hot = np.stack([np.clip(uptake * 3, 0, 1), np.clip(uptake * 3 - 1, 0, 1), np.clip(uptake * 3 - 2, 0, 1)], -1)
    alpha = np.clip(uptake, 0.0, 0.6)[..., None]
    rgb = grey[..., None] * (1 - alpha) + hot * alpha
    return np.asarray(np.rint(rgb * 254), dtype=np.uint8)  # 255 is kept for the text


def fused_pet_ct_screenshot(
    patient: SyntheticPatient | None = None, *, size: int = 512, frames: int = 1, samples: int = 3,
    bits: int = 8, planar: int = 0, signed: bool = False, burned_in: str | None = "YES", rle: bool = False,
    icon: bool = False,
) -> Dataset:
    """A Secondary Capture of a fused PET/CT view with name and ID burned in (white, full scale).

    ``samples`` 3 is RGB (``planar`` 0 or 1), 1 is MONOCHROME2 (``bits`` 8 or 16, ``signed``);
    ``frames`` > 1 gives the multi-frame SC class of that layout.  Burned In Annotation is
    ``burned_in`` (omitted when None).  ``rle`` compresses Pixel Data (RLE Lossless, encapsulated).
    ``icon`` adds an Icon Image Sequence: a thumbnail of the first frame, text included.
    """
    patient = patient or lung_patient()
    if samples not in (1, 3) or bits not in (8, 16) or (samples == 3 and (bits != 8 or signed)):
        raise ValueError("layouts: RGB 8-bit, or grey 8/16-bit (16-bit may be signed)")
    ink = _ink(size, patient)
    images = []
    for frame in range(frames):
        rgb = _fused_rgb(size, _TUMOUR_SLICE + frame, patient.study_instance_uid)
        if samples == 3:
            image = rgb.astype(np.uint8)
            image[ink] = 255
            images.append(image.transpose(2, 0, 1) if planar else image)
            continue
        grey = rgb.astype(np.float64).mean(axis=-1) / 254.0
        if bits == 8:
            image = np.rint(grey * 254).astype(np.uint8)
            image[ink] = 255
        else:
            low, high = (-2048, 2047) if signed else (0, 4095)
            image = np.rint(low + grey * (high - 1 - low)).astype(np.int16 if signed else np.uint16)
            image[ink] = high
        images.append(image)
    pixels = np.stack(images).astype(images[0].dtype.newbyteorder("<"))

    series_uid = patient.series_uid("FUSED")
    if frames == 1:
        sop_class = SecondaryCaptureImageStorage
    elif samples == 3:
        sop_class = MultiFrameTrueColorSecondaryCaptureImageStorage
    else:
        sop_class = (MultiFrameGrayscaleByteSecondaryCaptureImageStorage if bits == 8
                     else MultiFrameGrayscaleWordSecondaryCaptureImageStorage)
    ds = Dataset()
    modules.secondary_capture(
        ds, patient, sop_class=sop_class, series_uid=series_uid, modality=MODALITY, series_number=1201,
        description="Fused PET/CT", body_part="CHEST", capture_device=(CAPTURE_MANUFACTURER, CAPTURE_MODEL),
        comment=f"Fusion for {patient.display_name}", burned_in=burned_in,
    )
    ds.ManufacturerModelName = SCANNER_MODEL
    ds.StudyDescription = "PET-CT WHOLE BODY"
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = planar
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = bits
    ds.BitsStored = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00182001  # Page Number Vector
        ds.PageNumberVector = list(range(1, frames + 1))
        if samples == 1:
            ds.PresentationLUTShape = "IDENTITY"
            ds.RescaleIntercept = "0"
            ds.RescaleSlope = "1"
            ds.RescaleType = "US"
    data = pixels.tobytes()
    ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    if icon:
        ds.IconImageSequence = [_icon(images[0], planar if samples == 3 else 0, samples)]
    modules.file_meta(ds, patient, ExplicitVRLittleEndian)
    if rle:
        ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return ds


def _icon(image: np.ndarray, planar: int, samples: int) -> Dataset:
    """A 64 x 64 thumbnail (nearest neighbour, 8 bits) of one frame."""
    if samples == 3 and planar:
        image = image.transpose(1, 2, 0)
    step = max(1, image.shape[0] // 64)
    small = image[::step, ::step]
    if small.dtype != np.uint8:
        small = (small.astype(np.float64) - small.min()) / max(1, np.ptp(small)) * 255
    small = np.asarray(small, dtype=np.uint8)
    item = Dataset()
    item.SamplesPerPixel = samples
    item.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        item.PlanarConfiguration = 0
    item.Rows, item.Columns = small.shape[0], small.shape[1]
    item.BitsAllocated, item.BitsStored, item.HighBit, item.PixelRepresentation = 8, 8, 7, 0
    item.PixelData = small.tobytes()
    return item


def ink_mask(patient: SyntheticPatient, size: int = 512) -> np.ndarray:
    """The burned-in text's pixels (True where a glyph is), for tests that look for the text."""
    return _ink(size, patient)


def jpeg_baseline(ds: Dataset, quality: int = 90) -> Dataset:
    """``ds`` (single-frame, 8-bit RGB) with its pixels lossy compressed: JPEG Baseline, YBR_FULL_422."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    buffer = io.BytesIO()
    Image.fromarray(ds.pixel_array).save(buffer, format="JPEG", quality=quality, subsampling=1)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return ds
