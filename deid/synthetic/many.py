"""Many small CT objects fast (for network, crash and load tests): one slice built per series, then
copied with its own SOP Instance UID, Instance Number and position per object."""

from __future__ import annotations

import copy
from io import BytesIO
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset

from deid.synthetic.ct import ct_slice
from deid.synthetic.identity import SyntheticPatient, make_patient
from deid.synthetic.uids import instance_uid


def _vary(ds: Dataset, series: str, x: float, y: float, index: int) -> Dataset:
    ds.SOPInstanceUID = instance_uid(series, index)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [f"{x:.6g}", f"{y:.6g}", f"{-index * 1.25:.6g}"]
    ds.SliceLocation = f"{-index * 1.25:.6g}"
    return ds


def _template(
    patient: SyntheticPatient, size: int, label: str
) -> tuple[Dataset, str, float, float]:
    series = patient.series_uid(label)
    template = ct_slice(patient, series_uid=series, index=0, size=size, private_elements=20)
    x, y, _z = (float(v) for v in template.ImagePositionPatient)
    return template, series, x, y


def many_ct_slices(
    patient: SyntheticPatient, count: int, *, size: int = 32, label: str = "MANY"
) -> list[Dataset]:
    """``count`` distinct CT images of one series (same planted PHI in each), size x size."""
    template, series, x, y = _template(patient, size, label)
    return [_vary(copy.deepcopy(template), series, x, y, index) for index in range(count)]


def write_many_ct_slices(
    folder: str | Path,
    count: int,
    patient: SyntheticPatient | None = None,
    *,
    size: int = 32,
    label: str = "MANY",
) -> list[Path]:
    """Write ``count`` distinct CT objects into ``folder`` (``0000.dcm``, ...), fast: the
    template is encoded once; each copy gets its own SOP Instance UID (``<series>.1nnnnn``) and
    Instance Number by replacing bytes of equal length."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds, series, _x, _y = _template(patient or make_patient(0), size, label)
    marker_uid = f"{series}.1{0:05d}"  # "1" first: no leading zero in the component
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = marker_uid
    ds.InstanceNumber = "999999"
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    template = buffer.getvalue()
    number_at = template.index(b"\x20\x00\x13\x00IS\x06\x00999999") + 8
    paths = []
    for index in range(count):
        data = bytearray(template.replace(marker_uid.encode(), f"{series}.1{index:05d}".encode()))
        data[number_at : number_at + 6] = f"{index + 1:<6d}".encode()
        path = folder / f"{index:04d}.dcm"
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths
