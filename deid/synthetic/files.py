"""Writing synthetic objects to disk, under names that deliberately carry PHI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset

from deid.synthetic.ct import four_phase_ct
from deid.synthetic.identity import SyntheticPatient, make_patient
from deid.synthetic.pet import pet_series
from deid.synthetic.rtss import rtss
from deid.synthetic.seg import segmentation
from deid.synthetic.sr import landmark_sr


def default_name(ds: Dataset) -> str:
    """``<PatientID>_<Modality>_<SeriesNumber>_<InstanceNumber>.dcm``."""
    return (
        f"{ds.PatientID}_{ds.Modality}_{int(ds.get('SeriesNumber', 0)):03d}"
        f"_{int(ds.get('InstanceNumber', 1)):04d}.dcm"
    )


def write_dataset(ds: Dataset, path: Path, **kwargs: object) -> Path:
    """Write one object as a DICOM file (preamble and file meta enforced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dcmwrite(path, ds, enforce_file_format=True, **kwargs)  # type: ignore[arg-type]
    return path


def write_datasets(
    datasets: Iterable[Dataset], folder: str | Path, names: Sequence[str] | None = None
) -> list[Path]:
    """Write each dataset into ``folder`` (created), named by ``names`` or :func:`default_name`."""
    folder = Path(folder)
    items = list(datasets)
    chosen = list(names) if names is not None else [default_name(ds) for ds in items]
    if len(chosen) != len(items) or len(set(chosen)) != len(chosen):
        raise ValueError("need one distinct file name per dataset")
    return [write_dataset(ds, folder / name) for ds, name in zip(items, chosen)]


def study_folder_name(patient: SyntheticPatient) -> str:
    """The PHI-bearing folder name of a sample study: ``'CHEN^MEI-LING_A123456789'``."""
    return f"{patient.name}_{patient.patient_id}"


def write_sample_study(
    folder: str | Path,
    patient: SyntheticPatient | None = None,
    *,
    slices: int = 8,
    size: int = 64,
    seg: bool = False,
    pet: bool = False,
    sr: bool = False,
) -> list[Path]:
    """Write a four-phase CT and an RTSS on the ``'P'`` phase under a PHI-named sub folder.

    ``seg`` adds a SEG over the ``'P'`` phase (``SEG_P.dcm``); ``pet`` a PET series on the
    ``'N'`` phase's frame (``PT_001.dcm``, ...; half the CT matrix); ``sr`` a Comprehensive 3D
    SR of the 15 landmarks on the ``'P'`` phase (``SR_P.dcm``).
    """
    patient = patient or make_patient(0)
    target = Path(folder) / study_folder_name(patient)
    paths: list[Path] = []
    phases = four_phase_ct(patient, slices=slices, size=size)
    for phase, images in phases.items():
        names = [f"CT_{phase}_{i + 1:03d}.dcm" for i in range(len(images))]
        paths += write_datasets(images, target, names)
    paths += write_datasets([rtss(patient, phases["P"])], target, ["RTSS_P.dcm"])
    if seg:
        paths += write_datasets([segmentation(patient, phases["P"])], target, ["SEG_P.dcm"])
    if pet:
        images = pet_series(
            patient, slices=slices, size=max(8, size // 2), ct_series_uid=patient.series_uid("N")
        )
        paths += write_datasets(images, target, [f"PT_{i + 1:03d}.dcm" for i in range(slices)])
    if sr:
        paths += write_datasets([landmark_sr(patient, phases["P"])], target, ["SR_P.dcm"])
    return paths
