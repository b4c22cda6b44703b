"""The whole pull: read the approved list, start the node in this process, then for each entry
find its studies and fetch what is missing (study, then series, then instance level), wait for
every fetched object to be settled, and summarise by reference.

Run again after an interruption, it recovers the spool, takes the finds from the journal and
fetches only the instances neither released, quarantined nor waiting in the spool.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deid import logs
from deid.errors import UsageError
from deid.pull.holdings import MISSING, PENDING, QUARANTINED, RELEASED, Holdings
from deid.pull.journal import Journal
from deid.pull.node import PullNode
from deid.pull.query import Finder, PacsError, Series, Study
from deid.pull.requests import Request, read_requests
from deid.pull.retrieve import IMAGE, SERIES, STUDY, Getter, Mover, Target
from deid.pull.summary import COMPLETE, FAILED, PARTIAL, PullSummary, RequestResult
from deid.settings import (
    AllowedCaller,
    Destination,
    DestinationSettings,
    FolderDestinationSettings,
    ServeSettings,
)

SETTLE_SECONDS = 600.0  # how long the workers may take over what one retrieve brought
WAIT_POLL = 0.2


@dataclass(frozen=True)
class PullOptions:
    """What `deid pull` was asked: the PACS, the list, the filters, our AE, where releases go."""

    pacs: DestinationSettings
    requests: Path
    kind: str
    data: Path
    key_file: Path
    out: Path | None = None
    forward: tuple[Destination, ...] = ()  # C-STORE nodes (--forward), a STOW-RS archive (--stow)
    dates: str | None = None
    modalities: tuple[str, ...] = ()
    aet: str = "DEID"
    host: str = "0.0.0.0"
    port: int = 11112
    get: bool = False
    profile: str = "vghtpe"
    lookup: Path | None = None
    deny_list: Path | None = None
    workers: int = 1
    wait: float = 120.0  # at the end: seconds to wait for what a destination has not taken yet
    move_callers: tuple[str, ...] = field(default_factory=tuple)  # AE titles the PACS moves from

    def __post_init__(self) -> None:
        if (self.out is None) == (not self.forward):
            raise UsageError("--out, or --forward / --stow: the output folder or the destinations, "
                             "one or the other")

    def settings(self) -> ServeSettings:
        """The node's settings for the pull: our AE and port, the PACS allowed to store, the
        destinations (--forward, --stow, or the output folder of --out)."""
        callers = (self.pacs.ae_title, *self.move_callers)
        destinations = self.forward if self.out is None else (FolderDestinationSettings(self.out),)
        return ServeSettings(
            data=self.data, key_file=self.key_file,
            allow=tuple(AllowedCaller(title) for title in dict.fromkeys(callers)),
            destinations=tuple(replace(d, calling_ae_title=self.aet)
                               if isinstance(d, DestinationSettings) and not d.calling_ae_title
                               else d for d in destinations),
            ae_title=self.aet, host=self.host, port=self.port, profile=self.profile,
            lookup=self.lookup, deny_list=self.deny_list, workers=self.workers,
        )

    def query(self) -> dict[str, Any]:
        """The filters of the finds (kept in the journal: other filters, other finds)."""
        return {"dates": self.dates or "", "modalities": sorted(self.modalities)}


def pull(options: PullOptions) -> PullSummary:
    """Fetch every entry of the list; returns the summary (also written to the data folder)."""
    from deid.engine.uids import UidRemapper
    from deid.keys import load_key_file
    from deid.profile.loader import load_profile

    log = logs.get_logger("deid.pull")
    key = load_key_file(options.key_file)
    profile = load_profile(options.profile)
    requests = read_requests(options.requests, options.kind, key)
    settings = options.settings()
    node = PullNode(settings, listen=not options.get)
    holdings = Holdings(settings, [d.name for d in settings.destinations],
                        UidRemapper(key, profile.uid_root), options.out)
    found: dict[str, list[Study]] = {}
    failed: set[str] = set()  # the PACS could not be asked, or failed a retrieve
    fetch: _Fetcher | None = None
    node.start()
    try:
        journal = Journal(settings.records)
        journal.begin()
        fetch = _Fetcher(options, node, holdings, journal)
        log.info("pulling", total=len(requests), peer=options.pacs.name, aet=options.aet,
                 port=node.port or None, stage="get" if options.get else "move")
        finder = Finder(options.pacs, options.aet, sop_classes=options.get)
        for number, request in enumerate(requests, 1):
            try:
                found[request.ref] = studies = _studies(finder, journal, request, options)
                for study in studies:
                    fetch.study(study)
            except PacsError as exc:
                failed.add(request.ref)
                log.error("request failed", code="pull-pacs-error", error_type=str(exc),
                          count=number, total=len(requests))
                continue
            log.info("request done", count=number, total=len(requests),
                     outcome="found" if studies else "not found")
        node.settle(SETTLE_SECONDS)
        _wait_for_destinations(node, options.wait)
    finally:
        if fetch is not None:
            fetch.close()
        node.close()
    holdings.refresh()
    remap = UidRemapper(key, profile.uid_root).remap
    summary = PullSummary([_result(r, found.get(r.ref), r.ref in failed, holdings, remap)
                           for r in requests],
                          asked=journal.asked())
    journal.finish(summary.as_dict())
    journal.close()
    summary.write(settings.data)
    return summary


def _wait_for_destinations(node: PullNode, seconds: float) -> None:
    """Give objects waiting for a destination (retrying) up to ``seconds`` to go out; what is
    still waiting then stays in the spool and goes out at the next pull (reported pending)."""
    deadline = time.monotonic() + seconds
    while (node.busy() or node.waiting()) and time.monotonic() < deadline:
        time.sleep(WAIT_POLL)


def _studies(finder: Finder, journal: Journal, request: Request,
             options: PullOptions) -> list[Study]:
    """The request's studies: from the journal when an earlier run found them with the same
    filters, else from the PACS (and kept in the journal)."""
    studies = journal.studies(request, options.query())
    if studies is None:
        studies = finder.studies(request, dates=options.dates, modalities=options.modalities)
        journal.found(request, options.query(), studies)
    return studies


class _Fetcher:
    """Fetch a study's missing instances: the whole study when none is had (and no modality was
    left out), then whole series, then single instances, settling after each level."""

    def __init__(self, options: PullOptions, node: PullNode, holdings: Holdings,
                 journal: Journal) -> None:
        self.node = node
        self.holdings = holdings
        self.journal = journal
        self.log = logs.get_logger("deid.pull")
        assert node.spool is not None  # started
        self.getter = Getter(options.pacs, options.aet, node.spool) if options.get else None
        self.mover = None if options.get else Mover(options.pacs, options.aet, options.aet)
        self.failures = False  # a retrieve reported failed sub-operations or was cut

    def study(self, study: Study) -> None:
        """Fetch what ``study`` lacks; a level that brings fewer than it should is followed by
        the next one for what is still missing.  What a level brought is counted from what
        arrived, not from the PACS's counts.  When the study and series levels both brought
        nothing and the PACS reported failures (it cannot reach us, say), the instance level is
        not tried."""
        missing = self._missing(study)
        if not missing:
            return
        self.failures = False
        brought: list[int] = []  # per level tried: instances that stopped missing
        if len(missing) == study.expected and not study.filtered:
            self._retrieve(Target(STUDY, study.uid), study, study.expected)
            before, missing = len(missing), self._settled_missing(study)
            brought.append(before - len(missing))
        by_series: dict[str, list[str]] = defaultdict(list)
        for series, instance in missing:
            by_series[series.uid].append(instance.sop_uid)
        whole = [s for s in study.series if len(by_series.get(s.uid, ())) == len(s.instances)]
        if whole:
            for series in whole:
                self._retrieve(Target(SERIES, study.uid, series.uid), study, len(series.instances))
            before, missing = len(missing), self._settled_missing(study)
            brought.append(before - len(missing))
        if missing and len(brought) == 2 and not any(brought) and self.failures:
            self.log.warning("retrieves bring nothing: instance level not tried",
                             code="pull-incomplete", count=len(missing), total=study.expected)
            return
        for series, instance in missing:
            self._retrieve(Target(IMAGE, study.uid, series.uid, instance.sop_uid), study, 1)
        if missing:
            self._settled_missing(study)

    def _missing(self, study: Study) -> list[tuple[Series, Any]]:
        self.holdings.refresh()
        return [(s, i) for s, i in study.instances() if self.holdings.state(i.sop_uid) == MISSING]

    def _settled_missing(self, study: Study) -> list[tuple[Series, Any]]:
        """After a level's retrieves: let the workers settle what came, then what still lacks."""
        self.node.settle(SETTLE_SECONDS)
        return self._missing(study)

    def _retrieve(self, target: Target, study: Study, asked: int) -> None:
        """One retrieve, journalled; failures reported by the PACS are noted."""
        if self.getter is not None:
            classes = {i.sop_class for s, i in study.instances()
                       if target.level == STUDY or s.uid == target.series_uid}
            result = self.getter.retrieve(target, classes)
            service = "C-GET"
        else:
            assert self.mover is not None
            result = self.mover.retrieve(target)
            service = "C-MOVE"
        self.journal.retrieved(service, target.level, target.study_uid, target.series_uid,
                               target.sop_uid, asked,
                               (result.completed, result.failed, result.warning, result.status))
        log = self.log.debug if target.level == IMAGE else self.log.info  # one line per instance
        log("retrieved", stage=target.level.lower(), total=asked, count=result.completed,
            failed=result.failed or None)
        self.failures = self.failures or not result.succeeded

    def close(self) -> None:
        if self.mover is not None:
            self.mover.close()


def _result(request: Request, studies: list[Study] | None, failed: bool, holdings: Holdings,
            remap: Any) -> RequestResult:
    """A request's end: failed (the PACS could not be asked or failed us: counts of what was had
    so far when its studies were known), not found, complete or partial."""
    result = RequestResult(request.ref, request.kind)
    for study in studies or ():
        result.studies.append(remap(study.uid))
        result.announced += study.announced if not study.filtered else 0
        for _series, instance in study.instances():
            state = holdings.state(instance.sop_uid)
            result.expected += 1
            if state == RELEASED:
                result.released += 1
            elif state == QUARANTINED:
                result.quarantined += 1
            elif state == PENDING:
                result.pending += 1
            else:
                result.missing += 1
    if failed:
        result.status = FAILED
    elif studies:
        result.status = COMPLETE if result.released == result.expected else PARTIAL
    return result


def check_modalities(text: str) -> tuple[str, ...]:
    """``CT,PT,RTSTRUCT``: modality codes (upper case, 1 to 16 letters, digits or _)."""
    codes = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
    if not codes or any(not code.replace("_", "").isalnum() or len(code) > 16 for code in codes):
        raise UsageError("--modality: modality codes separated by commas, e.g. CT,PT,RTSTRUCT,SEG,SR")
    return codes
