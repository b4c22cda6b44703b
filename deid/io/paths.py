"""Output paths from de-identified values only: OUT/<PatientID>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm."""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _component(value: str, empty: str) -> str:
    value = _UNSAFE.sub("_", value.strip())
    return value if value and value not in (".", "..") else empty


def output_path(out: Path, patient_id: str, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    return (out / _component(patient_id, "no-patient-id") / _component(study_uid, "no-study")
            / _component(series_uid, "no-series") / (_component(sop_uid, "no-sop") + ".dcm"))
