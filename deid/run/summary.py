"""A run's summary: its totals, what its lines say, and where it is kept in the records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deid.io.writer import fsync_dir, write_bytes_atomic
from deid.keys import SecretKey
from deid.outcome import Outcome, Quarantined, Written
from deid.pipeline import make_private_dir
from deid.profile.model import Profile
from deid.run.paths import RunPaths

SUMMARY = "summary.json"  # the latest run's summary
SUMMARIES = "summaries"  # every run's summary, as <run id>.json


@dataclass
class RunSummary:
    """What a run did, in counts and folder names only (never a source path or a value); kept in
    the records as JSON."""

    run_id: str
    profile: str
    profile_version: str
    profile_sha256: str
    key_fingerprint: str
    output: str
    quarantine: str
    records: str
    total: int = 0
    written: int = 0
    skipped: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)  # how often each action was applied
    # removals kept as empty/dummy for the IOD
    iod_adjustments: dict[str, int] = field(default_factory=dict)
    audit: str = ""  # this run's audit file (see deid.audit.trail)
    # IOD problems inputs already had, released as they were (deid.checks)
    preexisting_problems: int = 0
    # input entries that are no file, by kind
    skipped_entries: dict[str, int] = field(default_factory=dict)
    max_object_bytes: int = 0  # larger inputs were quarantined too-large without being read
    # keyword -> identity values replaced in kept text
    text_replaced: dict[str, int] = field(default_factory=dict)
    deny_list_entries: int = 0  # entries of the deny-list searched in kept text (never the entries)
    from_quarantine: bool = False  # the run's input was the originals in its quarantine
    quarantine_waiting: int = 0  # entries in the quarantine after the run (this run's and earlier)
    quarantine_earlier: int = 0  # of those, entries left by earlier runs (not tried again now)
    left_quarantine: int = 0  # entries removed from the quarantine: their object is now released
    removed: int = 0  # outputs of another profile removed, the new profile releasing nothing there

    def line(self) -> str:
        """The line ``deid run`` prints when it ends."""
        if self.total == 0 and not self.quarantine_waiting:
            if self.from_quarantine:
                return f"deid run: the quarantine {self.quarantine} holds nothing to release again"
            return self._entries("deid run: no files found in the input: nothing to release")
        if self.total == 0:
            what = ("the quarantine holds no original to release again" if self.from_quarantine
                    else "no files found in the input")
            return self._entries(f"deid run: {what}; {self._waiting()}")
        source = "originals in the quarantine" if self.from_quarantine else "objects"
        text = (f"deid run: {self.total} {source}: {self.written} written, {self.skipped} skipped "
                f"(already done), {self.quarantined} quarantined in {self.seconds:.1f}s; "
                f"output {self.output}")
        if self.left_quarantine:
            text += f"; {self.left_quarantine} left the quarantine (released now)"
        if self.removed:
            text += (f"; {self.removed} files of the earlier profile's release removed from the "
                     "output")
        if self.text_replaced:
            text += (f"; {sum(self.text_replaced.values())} identity values replaced in kept free "
                     "text")
        if self.quarantined:
            text += f"; quarantine {self.quarantine} (reasons: " + ", ".join(
                f"{code} {n}" for code, n in sorted(self.reasons.items())) + ")"
        if self.quarantine_earlier:
            text += f"; {self._waiting()}"
        return self._entries(text) + f"; summary {Path(self.records) / SUMMARY}"

    def _waiting(self) -> str:
        return (f"{self.quarantine_earlier} objects wait in the quarantine {self.quarantine} from "
                "earlier runs (correct the cause, then deid run --from-quarantine)")

    def _entries(self, text: str) -> str:
        if self.skipped_entries:
            text += (f"; {sum(self.skipped_entries.values())} input entries skipped (not files: "
                     + ", ".join(f"{kind} {n}" for kind, n in sorted(self.skipped_entries.items()))
                     + ")")
            if "link-outside-source" in self.skipped_entries:
                text += ("; links leaving the source were refused: give --follow-links to follow "
                         "them")
        return text

    def count(self, outcome: Outcome) -> None:
        """Add an outcome of this run (written or quarantined) to the totals."""
        match outcome:
            case Written(released=facts):
                self.written += 1
                self.preexisting_problems += facts.preexisting_problems
                _add(self.actions, facts.counts)
                _add(self.iod_adjustments, facts.adjusted)
                _add(self.text_replaced, facts.text_replaced)
            case Quarantined(code=code):
                self.quarantined += 1
                _add(self.reasons, {code: 1})

    def ended(self, skipped_entries: Mapping[str, int], seconds: float) -> None:
        """The totals once the last outcome is in (counts by name sorted, reasons as they came)."""
        self.total = self.skipped + self.written + self.quarantined
        self.skipped_entries = dict(sorted(skipped_entries.items()))
        self.actions = dict(sorted(self.actions.items()))
        self.iod_adjustments = dict(sorted(self.iod_adjustments.items()))
        self.text_replaced = dict(sorted(self.text_replaced.items()))
        self.seconds = round(seconds, 3)

    @property
    def complete(self) -> bool:
        """Whether every object of the input is released and nothing waits in the quarantine (deid
        run exits 0; else 3).  An empty input is not complete; an empty quarantine given as input
        is."""
        return (not self.quarantine_waiting and not self.quarantined
                and (self.total > 0 or self.from_quarantine))


def _add(counts: dict[str, int], more: Mapping[str, int]) -> None:
    for name, count in more.items():
        counts[name] = counts.get(name, 0) + count


def new_summary(paths: RunPaths, profile: Profile, key: SecretKey, max_bytes: int, *,
                from_quarantine: bool) -> RunSummary:
    """A run's summary before its first object (its totals are added as the run goes)."""
    return RunSummary(
        run_id=uuid.uuid4().hex[:12], profile=profile.name, profile_version=profile.version,
        profile_sha256=profile.sha256, key_fingerprint=key.fingerprint, output=str(paths.out),
        quarantine=str(paths.quarantine), records=str(paths.records), max_object_bytes=max_bytes,
        from_quarantine=from_quarantine,
    )


def write_summary(records: Path, summary: RunSummary) -> None:
    """This run's summary, kept (summaries/<run id>.json), and as the latest (summary.json)."""
    text = (json.dumps(asdict(summary), indent=2) + "\n").encode()
    kept = make_private_dir(records / SUMMARIES)
    write_bytes_atomic(text, kept / f"{summary.run_id}.json", mode=0o600)
    fsync_dir(kept)
    write_bytes_atomic(text, records / SUMMARY, mode=0o600)
    fsync_dir(records)
