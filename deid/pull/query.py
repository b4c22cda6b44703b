"""C-FIND (Study Root) of what a request names: its studies (with the number of instances the
PACS announces), their series and their instances.

One association per request; a failure status or a lost association is a :class:`PacsError`
(our words, never a value of the query).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from deid.pull.requests import ACCESSION, Request
from deid.settings import DestinationSettings

_DATE_RANGE = re.compile(r"^(\d{8})?-?(\d{8})?$")
NETWORK_TIMEOUT = 60.0


class PacsError(Exception):
    """The PACS could not be asked, or refused a query or retrieve (our words only)."""


@dataclass(frozen=True)
class Instance:
    """One instance the PACS holds: its original SOP Instance and SOP Class UIDs."""

    sop_uid: str
    sop_class: str


@dataclass
class Series:
    """One series of a study: original UID, modality and its instances."""

    uid: str
    modality: str
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Study:
    """A study a request matched: original Study Instance UID, the number of instances the PACS
    announced at study level, and the series kept by the modality filter."""

    uid: str
    announced: int
    series: list[Series] = field(default_factory=list)
    filtered: bool = False  # some series were left out by --modality

    def instances(self) -> Iterator[tuple[Series, Instance]]:
        for series in self.series:
            for instance in series.instances:
                yield series, instance

    @property
    def expected(self) -> int:
        """Instances to fetch: those the series-level finds listed (after the modality filter)."""
        return sum(len(series.instances) for series in self.series)


def check_date_range(text: str) -> str:
    """``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``YYYYMMDD-`` or ``-YYYYMMDD`` (a DICOM DA range)."""
    match = _DATE_RANGE.match(text.strip())
    if not match or not (match.group(1) or match.group(2)):
        raise ValueError("a date or range YYYYMMDD-YYYYMMDD (either end may be left open)")
    return text.strip()


def make_ae(aet: str) -> AE:
    """Our AE towards the PACS (association, DIMSE and network timeouts bounded)."""
    ae = AE(ae_title=aet)
    ae.acse_timeout = 30
    ae.dimse_timeout = NETWORK_TIMEOUT
    ae.network_timeout = NETWORK_TIMEOUT
    return ae


def associate(ae: AE, pacs: DestinationSettings, **kwargs: Any) -> Any:
    """An established association with the PACS, or :class:`PacsError`."""
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title, **kwargs)
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise PacsError(f"the PACS {pacs.name} rejected the association (check --aet: the PACS "
                        "must know the calling AE title)")
    raise PacsError(f"no association with the PACS {pacs.name} (not reachable, or it aborted)")


class Finder:
    """C-FIND at study, series and image level over one association."""

    def __init__(self, pacs: DestinationSettings, aet: str, *, sop_classes: bool = False) -> None:
        """``sop_classes``: ask each instance's SOP Class UID too (C-GET offers a context per
        class; a PACS may have to open every file to answer it, so only when needed)."""
        self.pacs = pacs
        self.sop_classes = sop_classes
        self.ae = make_ae(aet)
        self.ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)

    def studies(self, request: Request, *, dates: str | None = None,
                modalities: tuple[str, ...] = ()) -> list[Study]:
        """Every study ``request`` names (with dates in range), with its series (of the listed
        modalities, when given) and their instances."""
        assoc = associate(self.ae, self.pacs)
        try:
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.AccessionNumber = request.value if request.kind == ACCESSION else ""
            query.PatientID = request.value if request.kind != ACCESSION else ""
            query.StudyDate = dates or ""
            query.StudyInstanceUID = ""
            query.NumberOfStudyRelatedInstances = ""
            found: dict[str, Study] = {}
            for answer in self._find(assoc, query):
                uid = str(answer.get("StudyInstanceUID", "") or "")
                if uid:
                    found.setdefault(uid, Study(uid, _count(answer, "NumberOfStudyRelatedInstances")))
            studies = []
            for study in found.values():
                self._series(assoc, study, modalities)
                if study.series:
                    studies.append(study)
            return studies
        finally:
            assoc.release()

    def _series(self, assoc: Any, study: Study, modalities: tuple[str, ...]) -> None:
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study.uid
        query.SeriesInstanceUID = ""
        query.Modality = ""
        query.NumberOfSeriesRelatedInstances = ""
        for answer in self._find(assoc, query):
            uid = str(answer.get("SeriesInstanceUID", "") or "")
            modality = str(answer.get("Modality", "") or "").upper()
            if not uid:
                continue
            if modalities and modality not in modalities:
                study.filtered = True
                continue
            study.series.append(Series(uid, modality))
        for series in study.series:
            query = Dataset()
            query.QueryRetrieveLevel = "IMAGE"
            query.StudyInstanceUID = study.uid
            query.SeriesInstanceUID = series.uid
            query.SOPInstanceUID = ""
            if self.sop_classes:
                query.SOPClassUID = ""
            for answer in self._find(assoc, query):
                sop = str(answer.get("SOPInstanceUID", "") or "")
                if sop:
                    series.instances.append(Instance(sop, str(answer.get("SOPClassUID", "") or "")))
        study.series = [series for series in study.series if series.instances]

    def _find(self, assoc: Any, query: Dataset) -> Iterator[Dataset]:
        level = query.QueryRetrieveLevel
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if not status:
                raise PacsError(f"C-FIND at {level} level: no answer from the PACS {self.pacs.name} "
                                "(association lost or timed out)")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if identifier is not None:
                    yield identifier
            elif code != 0x0000:
                raise PacsError(f"C-FIND at {level} level: the PACS {self.pacs.name} answered "
                                f"status 0x{code:04X}")


def _count(answer: Dataset, keyword: str) -> int:
    try:
        return int(answer.get(keyword, 0) or 0)
    except (TypeError, ValueError):
        return 0
