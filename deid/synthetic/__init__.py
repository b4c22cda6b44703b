"""Synthetic DICOM test and demo data: a four-phase liver CT, its RT Structure Set and SEG, a PET,
landmark SRs.

Every object is built deterministically from a patient index and carries planted PHI
(see :meth:`SyntheticPatient.phi_values`) in the places a de-identifier must clean.
"""

from deid.synthetic.ct import PHASE_SERIES, ct_slice, four_phase_ct
from deid.synthetic.files import (
    default_name,
    study_folder_name,
    write_dataset,
    write_datasets,
    write_sample_study,
)
from deid.synthetic.identity import (
    PHASES,
    SERIES_LABELS,
    SyntheticPatient,
    later_study,
    make_patient,
)
from deid.synthetic.pet import pet_series, pet_slice
from deid.synthetic.rtss import rtss
from deid.synthetic.seg import segmentation
from deid.synthetic.sr import LANDMARKS, SR_CLASSES, landmark_sr, place_landmarks
from deid.synthetic.uids import derive_uid, instance_uid

__all__ = [
    "LANDMARKS",
    "PHASES",
    "PHASE_SERIES",
    "SERIES_LABELS",
    "SR_CLASSES",
    "SyntheticPatient",
    "ct_slice",
    "default_name",
    "derive_uid",
    "four_phase_ct",
    "instance_uid",
    "landmark_sr",
    "later_study",
    "make_patient",
    "pet_series",
    "pet_slice",
    "place_landmarks",
    "rtss",
    "segmentation",
    "study_folder_name",
    "write_dataset",
    "write_datasets",
    "write_sample_study",
]
