"""Old and overlooked places for PHI: an overlay, a retired curve, retired attributes."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from deid.synthetic.identity import SyntheticPatient

#: Retired attributes planted by :func:`retired_attributes` (all retired in pydicom's dictionary).
RETIRED_KEYWORDS = (
    "OtherPatientIDs",
    "InsurancePlanIdentification",
    "ReasonForStudy",
    "StudyComments",
    "StudyStatusID",
    "NetworkID",
    "ScheduledStudyStartDate",
    "ScheduledStudyStartTime",
)


def overlay(ds: Dataset, p: SyntheticPatient, rows: int, columns: int) -> None:
    """Overlay Plane module in group 6000: a graphics box, labelled with the patient's name."""
    bitmap = np.zeros((rows, columns), dtype=np.uint8)
    bitmap[rows // 16 : rows // 16 + max(2, rows // 16), columns // 16 : columns // 2] = 1
    packed = np.packbits(bitmap.ravel(), bitorder="little").tobytes()
    packed += b"\0" * (len(packed) % 2)
    ds.add_new(0x60000010, "US", rows)
    ds.add_new(0x60000011, "US", columns)
    ds.add_new(0x60000022, "LO", f"Annotation for {p.display_name}")
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60001500, "LO", f"{p.name} {p.patient_id}")
    ds.add_new(0x60003000, "OW", packed)


def curve(ds: Dataset, p: SyntheticPatient) -> None:
    """A retired curve (group 5000): a time-density curve described with the patient's name."""
    points = [0, 40, 35, 140, 70, 115, 180, 95]
    ds.add_new(0x50000005, "US", 2)  # Curve Dimensions
    ds.add_new(0x50000010, "US", len(points) // 2)  # Number of Points
    ds.add_new(0x50000020, "CS", "TAC")  # Type of Data
    ds.add_new(0x50000022, "LO", f"Liver TDC {p.display_name}")  # Curve Description
    ds.add_new(0x50000103, "US", 0)  # Data Value Representation: US
    ds.add_new(0x50003000, "OW", np.asarray(points, dtype="<u2").tobytes())


def retired_attributes(ds: Dataset, p: SyntheticPatient) -> None:
    """Retired attributes that old systems still write, each carrying PHI."""
    ds.OtherPatientIDs = p.other_patient_id
    ds.InsurancePlanIdentification = p.insurance_plan
    ds.ReasonForStudy = f"f/u HCC {p.patient_id}"
    ds.StudyComments = f"Called {p.display_name} at {p.telephone}"
    ds.StudyStatusID = "VERIFIED"
    ds.NetworkID = p.network_id
    ds.ScheduledStudyStartDate = p.study_date
    ds.ScheduledStudyStartTime = "080000"
