"""A CT whose kept free text names its own patient: what the review section must flag."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from deid.synthetic.ct import ct_slice
from deid.synthetic.files import write_dataset
from deid.synthetic.identity import SyntheticPatient, make_patient


def identity_in_free_text(patient: SyntheticPatient | None = None) -> Dataset:
    """A CT slice whose kept free text carries identity, and one value that only looks like it.

    - Image Comments: the patient's name in lower case (``'follow-up of chen mei-ling'``);
    - Series Description: the patient ID inside a longer note (``'Recon A123456789-b'``);
    - Body Part Examined: ``'ABDOMEN'`` (nothing to flag);
    - Study Description: the family name inside a longer word (``'CT KITCHEN PROTOCOL'`` style,
      built as ``'CT X<FAMILY>X PROTOCOL'``): not a name, must not be flagged.
    """
    p = patient or make_patient(0)
    ds = ct_slice(p, series_uid=p.series_uid("FREE-TEXT"), index=0, size=16, private_elements=14)
    family = p.name.split("^")[0]
    ds.ImageComments = f"follow-up of {p.display_name.lower()}"
    ds.SeriesDescription = f"Recon {p.patient_id}-b"
    ds.StudyDescription = f"CT X{family}X PROTOCOL"
    return ds


def ct_identity_in_free_text(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """Write :func:`identity_in_free_text` as ``ct_identity_in_free_text.dcm`` in ``folder``."""
    path = Path(folder) / "ct_identity_in_free_text.dcm"
    return write_dataset(identity_in_free_text(patient), path)
