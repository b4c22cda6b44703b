"""The pull's summary: each requested entry, by its reference only, as complete, partial (with
counts) or not found, with the released Study Instance UIDs of what it matched.  Printed to the
terminal and written as ``pull-report.json`` and ``pull-report.csv`` in the data folder: nothing
in them is a requested or original value.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deid.io.writer import write_bytes_atomic

COMPLETE, PARTIAL, NOT_FOUND, FAILED = "complete", "partial", "not-found", "failed"
#: request status -> the reason code whose "what to do" deid.audit.reasons gives
CODES = {PARTIAL: "pull-incomplete", NOT_FOUND: "pull-not-found", FAILED: "pull-pacs-error"}
COUNTS = ("expected", "released", "quarantined", "pending", "missing")


@dataclass
class RequestResult:
    """One requested entry's end: ``ref`` (keyed digest), status, instance counts over its
    studies (``expected``: those the finds listed), and its studies' released Study Instance
    UIDs."""

    ref: str
    kind: str
    status: str = NOT_FOUND
    studies: list[str] = field(default_factory=list)
    announced: int = 0  # NumberOfStudyRelatedInstances (studies without a --modality filter)
    expected: int = 0
    released: int = 0
    quarantined: int = 0
    pending: int = 0
    missing: int = 0

    @property
    def code(self) -> str | None:
        return CODES.get(self.status)

    def line(self) -> str:
        if self.status == NOT_FOUND or (self.status == FAILED and not self.studies):
            return f"{self.ref} {self.status}"
        counts = f"{self.released}/{self.expected} released"
        extra = [f"{n} {what}" for what, n in (("quarantined", self.quarantined),
                                               ("pending", self.pending),
                                               ("missing", self.missing)) if n]
        studies = f"{len(self.studies)} stud{'y' if len(self.studies) == 1 else 'ies'}"
        return f"{self.ref} {self.status} {counts}" + (f" ({', '.join(extra)})" if extra else "") \
            + f", {studies}"


@dataclass
class PullSummary:
    """Every request's result, plus what this run asked the PACS for."""

    results: list[RequestResult]
    asked: int = 0  # instances this run's retrieves were to bring (only what was missing)

    def totals(self) -> dict[str, int]:
        totals = {status: 0 for status in (COMPLETE, PARTIAL, NOT_FOUND, FAILED)}
        for result in self.results:
            totals[result.status] += 1
        for name in COUNTS:
            totals[name] = sum(getattr(result, name) for result in self.results)
        return totals

    @property
    def complete(self) -> bool:
        return all(result.status == COMPLETE for result in self.results)

    def line(self) -> str:
        t = self.totals()
        return (f"deid pull: {len(self.results)} requested: {t[COMPLETE]} complete, "
                f"{t[PARTIAL]} partial, {t[NOT_FOUND]} not found, {t[FAILED]} failed; "
                f"{t['released']}/{t['expected']} instances released, {t['quarantined']} "
                f"quarantined, {t['pending']} pending; {self.asked} fetched by this run")

    def as_dict(self) -> dict:
        return {"totals": self.totals(), "asked": self.asked,
                "requests": [{**asdict(r), "code": r.code} for r in self.results]}

    def write(self, folder: Path) -> Path:
        """``pull-report.json`` and ``pull-report.csv`` in ``folder``; returns the JSON's path."""
        target = folder / "pull-report.json"
        write_bytes_atomic(json.dumps(self.as_dict(), indent=2, sort_keys=True).encode() + b"\n",
                           target, mode=0o600)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["ref", "kind", "status", "code", "announced", *COUNTS, "studies"])
        for r in self.results:
            writer.writerow([r.ref, r.kind, r.status, r.code or "", r.announced,
                             *(getattr(r, name) for name in COUNTS), " ".join(r.studies)])
        write_bytes_atomic(text.getvalue().encode(), folder / "pull-report.csv", mode=0o600)
        return target
