"""De-identify one dataset: checks before the rules, the walk, then the final updaters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from deid import __version__, standard
from deid.engine.compiler import compile_rules
from deid.engine.content_items import ContentTreeCleaner
from deid.engine.identity import Identity
from deid.engine.uids import UidRemapper
from deid.engine.walker import Walker
from deid.errors import ObjectError
from deid.keys import SecretKey
from deid.profile.model import Profile

SECONDARY_CAPTURE_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",
})
_REQUIRED = (("SOPClassUID", 0x00080016), ("SOPInstanceUID", 0x00080018),
             ("StudyInstanceUID", 0x0020000D), ("SeriesInstanceUID", 0x0020000E))
IMPLEMENTATION_VERSION = f"DEID_{__version__}"[:16]


@dataclass
class Result:
    """What de-identification produced, in de-identified values only."""

    dataset: Dataset
    sop_class_uid: str
    modality: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    counts: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)


class Deidentifier:
    """Applies a profile with a key (and an optional case-number lookup) to datasets."""

    def __init__(self, profile: Profile, key: SecretKey, *, lookup: Mapping[str, str] | None = None) -> None:
        self.profile = profile
        self.identity = Identity(key, lookup=lookup, case_digits=profile.case_number_digits)
        self.uids = UidRemapper(key, profile.uid_root)
        self._method_codes = _method_code_items(profile)

    def deidentify(self, ds: Dataset) -> Result:
        """De-identify ``ds`` in place and return it with its new identifiers."""
        for keyword, tag in _REQUIRED:
            if not str(ds.get(keyword, "") or "").strip():
                raise ObjectError("missing-identifier", f"the object has no {keyword}; it cannot be released",
                                  stage="read", path=f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        sop_class = str(ds.SOPClassUID).strip()
        self._check_burned_in(ds, sop_class)
        patient_id = str(ds.get("PatientID", "") or "").strip()
        rules = compile_rules(self.profile, sop_class)
        cleaned = ContentTreeCleaner(rules).clean(ds)  # SR content items, before values change
        walker = Walker(rules, self.identity, self.uids, patient_id)
        walker.walk(ds)
        walker.counts.update(cleaned)
        self._mark(ds)
        ds.file_meta = self._file_meta(ds, sop_class)
        if hasattr(ds, "preamble"):
            ds.preamble = b"\x00" * 128
        return Result(
            dataset=ds,
            sop_class_uid=sop_class,
            modality=str(ds.get("Modality", "") or ""),
            patient_id=str(ds.get("PatientID", "") or ""),
            study_uid=str(ds.StudyInstanceUID),
            series_uid=str(ds.SeriesInstanceUID),
            sop_uid=str(ds.SOPInstanceUID),
            counts=walker.counts,
            adjusted=walker.adjusted,
        )

    def _check_burned_in(self, ds: Dataset, sop_class: str) -> None:
        if self.profile.allow_burned_in:
            return
        burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
        if burned == "YES" or (sop_class in SECONDARY_CAPTURE_CLASSES and burned != "NO"):
            raise ObjectError(
                "burned-in-annotation-risk",
                "Burned In Annotation is YES, or a Secondary Capture does not say NO: pixels may show "
                "identity; review it, blank the text, or release it with a profile that allows it",
                stage="check", path="(0028,0301)",
            )

    def _mark(self, ds: Dataset) -> None:
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = self.profile.method_description
        ds.DeidentificationMethodCodeSequence = Sequence([_copy(item) for item in self._method_codes])
        options = self.profile.options
        if "retain_longitudinal_full_dates" in options:
            ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
        elif "retain_longitudinal_modified_dates" in options or "dates" in self.profile.class_rules:
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        else:
            ds.LongitudinalTemporalInformationModified = "REMOVED"

    @staticmethod
    def _file_meta(ds: Dataset, sop_class: str) -> FileMetaDataset:
        """A new file meta group: nothing of the sender's (AE titles, private information) is kept."""
        old = getattr(ds, "file_meta", None)
        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = old.TransferSyntaxUID
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION
        return meta


def _method_code_items(profile: Profile) -> list[Dataset]:
    columns = (["basic_profile"] if profile.standard_table else []) + list(profile.options)
    items = []
    for column in columns:
        code = standard.method_code(column)
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme
        item.CodeMeaning = code.meaning
        items.append(item)
    return items


def _copy(item: Dataset) -> Dataset:
    new = Dataset()
    new.update(item)
    return new
