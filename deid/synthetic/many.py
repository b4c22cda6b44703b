"""Many small CT objects fast (for network, crash and load tests): one slice built per series, then
copied with its own SOP Instance UID, Instance Number and position per object."""

from __future__ import annotations

import copy
from pathlib import Path

from pydicom.dataset import Dataset

from deid.synthetic.ct import ct_slice
from deid.synthetic.files import write_dataset
from deid.synthetic.identity import SyntheticPatient, make_patient
from deid.synthetic.uids import instance_uid


def _vary(ds: Dataset, series: str, x: float, y: float, index: int) -> Dataset:
    ds.SOPInstanceUID = instance_uid(series, index)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [f"{x:.6g}", f"{y:.6g}", f"{-index * 1.25:.6g}"]
    ds.SliceLocation = f"{-index * 1.25:.6g}"
    return ds


def _template(patient: SyntheticPatient, size: int, label: str) -> tuple[Dataset, str, float, float]:
    series = patient.series_uid(label)
    template = ct_slice(patient, series_uid=series, index=0, size=size, private_elements=20)
    x, y, _z = (float(v) for v in template.ImagePositionPatient)
    return template, series, x, y


def many_ct_slices(patient: SyntheticPatient, count: int, *, size: int = 32, label: str = "MANY") -> list[Dataset]:
    """``count`` distinct CT images of one series (same planted PHI in each), ``size`` x ``size``."""
    template, series, x, y = _template(patient, size, label)
    return [_vary(copy.deepcopy(template), series, x, y, index) for index in range(count)]


def write_many_ct_slices(folder: str | Path, count: int, patient: SyntheticPatient | None = None, *,
                         size: int = 32, label: str = "MANY") -> list[Path]:
    """Write the objects of :func:`many_ct_slices` into ``folder`` as ``0000.dcm``, ``0001.dcm``, ..."""
    folder = Path(folder)
    ds, series, x, y = _template(patient or make_patient(0), size, label)
    return [write_dataset(_vary(ds, series, x, y, i), folder / f"{i:04d}.dcm") for i in range(count)]
