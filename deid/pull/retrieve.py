"""Retrieve what a study lacks: C-MOVE to the pull's own AE (the node's receiver takes the
objects), or C-GET, whose objects arrive on this association and go into the same spool through
the same durable put before their C-STORE is answered success.

A retrieve names a study, a series, or one instance (Study Root, with the unique keys above the
level).  Its result holds the sub-operation counts the PACS reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from deid import logs
from deid.intake.receiver import TRANSFER_SYNTAXES
from deid.pull.query import PacsError, associate, make_ae
from deid.settings import DestinationSettings
from deid.spool import Spool, SpoolError

STUDY, SERIES, IMAGE = "STUDY", "SERIES", "IMAGE"
STATUS_SUCCESS, STATUS_OUT_OF_RESOURCES, STATUS_CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC210
MOVE_DESTINATION_UNKNOWN = 0xA801
_MAX_STORAGE_CONTEXTS = 120  # of the 128 an association may carry; one goes to C-GET itself


@dataclass(frozen=True)
class Target:
    """What one retrieve names: a study, a series of it, or one instance of a series."""

    level: str
    study_uid: str
    series_uid: str = ""
    sop_uid: str = ""

    def identifier(self) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = self.level
        ds.StudyInstanceUID = self.study_uid
        if self.level in (SERIES, IMAGE):
            ds.SeriesInstanceUID = self.series_uid
        if self.level == IMAGE:
            ds.SOPInstanceUID = self.sop_uid
        return ds


@dataclass(frozen=True)
class Retrieved:
    """The PACS's final counts of one retrieve: sub-operations completed, failed, with warnings;
    ``status`` its final status (None: the association was lost)."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    status: int | None = None

    @property
    def succeeded(self) -> bool:
        """The PACS reported no failure (final status success or warning, no failed one)."""
        return self.status in (0x0000, 0xB000) and not self.failed


class Mover:
    """C-MOVE to ``destination_aet`` (the pull's own receiver) over one association."""

    def __init__(self, pacs: DestinationSettings, aet: str, destination_aet: str) -> None:
        self.pacs = pacs
        self.destination_aet = destination_aet
        self.ae = make_ae(aet)
        self.ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        self.assoc: Any = None

    def retrieve(self, target: Target) -> Retrieved:
        assoc = self._association()
        responses = assoc.send_c_move(target.identifier(), self.destination_aet,
                                      StudyRootQueryRetrieveInformationModelMove)
        result = _final(responses, "C-MOVE", target.level, self.pacs)
        if result.status == MOVE_DESTINATION_UNKNOWN:
            raise PacsError(f"the PACS {self.pacs.name} does not know {self.destination_aet} as a "
                            "move destination: register that AE title with this machine's address "
                            "and --port at the PACS, or retrieve with --get")
        return result

    def _association(self) -> Any:
        if self.assoc is None or not self.assoc.is_established:
            self.assoc = associate(self.ae, self.pacs)
        return self.assoc

    def close(self) -> None:
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.release()
        self.assoc = None


class Getter:
    """C-GET over an association that also takes the objects (SCP role for their storage
    classes): each goes to ``spool.put`` (written, fsync'd, queued) before it is answered."""

    def __init__(self, pacs: DestinationSettings, aet: str, spool: Spool) -> None:
        self.pacs = pacs
        self.aet = aet
        self.spool = spool
        self.refused = 0  # objects the spool could not take (answered out of resources)

    def retrieve(self, target: Target, sop_classes: set[str]) -> Retrieved:
        """C-GET ``target``; ``sop_classes``: the storage classes its objects may have (from the
        image-level find), offered with the receiver's transfer syntaxes."""
        classes = sorted(c for c in sop_classes if c)
        if not classes:
            raise PacsError("C-GET: the PACS named no SOP Class UID for the instances to get "
                            "(use C-MOVE: leave out --get)")
        if len(classes) > _MAX_STORAGE_CONTEXTS:
            raise PacsError(f"C-GET: {len(classes)} storage classes in one study, more than one "
                            "association can carry (use C-MOVE: leave out --get)")
        ae = make_ae(self.aet)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for sop_class in classes:
            ae.add_requested_context(sop_class, TRANSFER_SYNTAXES)
        roles = [build_role(sop_class, scp_role=True) for sop_class in classes]
        handlers = [(evt.EVT_C_STORE, self._store)]
        assoc = associate(ae, self.pacs, ext_neg=roles, evt_handlers=handlers)
        try:
            responses = assoc.send_c_get(target.identifier(),
                                         StudyRootQueryRetrieveInformationModelGet)
            return _final(responses, "C-GET", target.level, self.pacs)
        finally:
            if assoc.is_established:
                assoc.release()

    def _store(self, event: Any) -> int:
        """The node's durable path for an object arriving on the C-GET association: success only
        once :meth:`deid.spool.Spool.put` made it durable and queued it."""
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception:  # noqa: BLE001
            return STATUS_CANNOT_UNDERSTAND
        try:
            self.spool.put(data)
        except SpoolError as exc:
            self.refused += 1
            _log("object refused: spool unavailable", code="out-of-resources", error_type=str(exc))
            return STATUS_OUT_OF_RESOURCES
        except Exception:  # noqa: BLE001  (never success for an object that is not durable)
            self.refused += 1
            _log("object refused: spool error", code="out-of-resources")
            return STATUS_OUT_OF_RESOURCES
        return STATUS_SUCCESS

    def close(self) -> None:
        """Nothing held between retrieves (one association each: its roles fit its study)."""


def _final(responses: Any, service: str, level: str, pacs: DestinationSettings) -> Retrieved:
    """The last response's counts (a PACS may leave them out of the final one: the last pending
    response's are kept then)."""
    counts = Retrieved()
    for status, _identifier in responses:
        if not status:
            return Retrieved(counts.completed, counts.failed, counts.warning, None)
        counts = Retrieved(
            _int(status, "NumberOfCompletedSuboperations", counts.completed),
            _int(status, "NumberOfFailedSuboperations", counts.failed),
            _int(status, "NumberOfWarningSuboperations", counts.warning),
            int(status.Status),
        )
    if counts.status is not None and counts.status not in (0x0000, 0xB000):
        logs.get_logger("deid.pull").warning(
            "retrieve ended with a failure status", code="retrieve-failed", outcome=service,
            status=f"0x{counts.status:04X}", stage=level.lower(), count=counts.completed,
            failed=counts.failed, peer=pacs.name)
    return counts


def _int(status: Dataset, keyword: str, default: int) -> int:
    value = status.get(keyword)
    try:
        return int(value) if value is not None and value != "" else default
    except (TypeError, ValueError):
        return default


def _log(event: str, **fields: object) -> None:
    try:
        logs.get_logger("deid.pull").error(event, **fields)
    except Exception:  # noqa: BLE001, S110  (a logging failure never changes the answer)
        pass
