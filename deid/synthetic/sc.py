"""Secondary Capture images: a screen grab of the CT with a burned-in name banner."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from deid.synthetic import legacy, modules
from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.phantom import SliceGeometry, hounsfield_slice


def _pixels(size: int, seed: str) -> bytes:
    """8-bit abdomen window of the phantom, with a white banner where text is burned in."""
    hu = hounsfield_slice(SliceGeometry(size), 3, "P", seed=seed).astype(np.float64)
    image = np.clip((hu + 160.0) / 400.0 * 255.0, 0, 255).astype(np.uint8)
    image[1 : 1 + max(2, size // 12), 1 : size // 2] = 255
    return image.tobytes()


def secondary_capture_image(
    patient: SyntheticPatient, *, burned_in: str | None = "YES", size: int = 64
) -> Dataset:
    """An SC Image; Burned In Annotation is ``burned_in`` (omitted when None)."""
    series_uid = patient.series_uid("SC")
    ds = Dataset()
    modules.secondary_capture(
        ds, patient, sop_class=SecondaryCaptureImageStorage, series_uid=series_uid, modality="OT",
        series_number=99, description="Screen capture", body_part="ABDOMEN",
        capture_device=("SIEMENS", "syngo.via"), comment=f"Capture of {patient.display_name}",
        burned_in=burned_in,
    )
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = _pixels(size, patient.study_instance_uid)
    legacy.overlay(ds, patient, size, size)
    modules.file_meta(ds, patient, ExplicitVRLittleEndian)
    return ds
