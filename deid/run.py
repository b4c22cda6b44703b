"""`deid run`: de-identify folders of files into an output tree, resumably and in parallel.

Finished objects are recorded in a journal in the records folder (keyed by an HMAC of the source
path, size and mtime: no source path is stored), so a second run skips them and a run killed
half-way completes on the next start with nothing lost or doubled.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from tqdm import tqdm

from deid import logs
from deid.audit.trail import AuditTrail
from deid.errors import UsageError
from deid.io.writer import fsync_dir
from deid.keys import SecretKey
from deid.pipeline import Outcome, Pipeline, make_private_dir
from deid.profile.model import Profile

JOURNAL = "journal.jsonl"
BATCH = 64  # outputs made durable together with one sync, then journalled
SUMMARY = "summary.json"


@dataclass
class RunPaths:
    out: Path
    quarantine: Path
    records: Path

    @classmethod
    def beside(cls, out: Path, quarantine: Path | None, records: Path | None) -> "RunPaths":
        out = out.resolve()
        paths = cls(out, (quarantine or out.parent / f"{out.name}-quarantine").resolve(),
                    (records or out.parent / f"{out.name}-records").resolve())
        for name, path in (("--quarantine", paths.quarantine), ("--records", paths.records)):
            if path == out or out in path.parents:
                raise UsageError(f"{name} must be outside the output folder: the output holds only what may be released")
        return paths


@dataclass
class RunSummary:
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
    iod_adjustments: dict[str, int] = field(default_factory=dict)  # removals kept as empty/dummy for the IOD
    audit: str = ""  # this run's audit file (see deid.audit.trail)
    preexisting_problems: int = 0  # IOD problems inputs already had, released as they were (deid.checks)
    text_replaced: dict[str, int] = field(default_factory=dict)  # keyword -> identity values replaced in kept text
    deny_list_entries: int = 0  # entries of the deny-list searched in kept text (never the entries)

    def line(self) -> str:
        text = (f"deid run: {self.total} objects: {self.written} written, {self.skipped} skipped "
                f"(already done), {self.quarantined} quarantined in {self.seconds:.1f}s; output {self.output}")
        if self.text_replaced:
            text += f"; {sum(self.text_replaced.values())} identity values replaced in kept free text"
        if self.quarantined:
            text += f"; quarantine {self.quarantine} (reasons: " + ", ".join(
                f"{code} {n}" for code, n in sorted(self.reasons.items())) + ")"
        return text + f"; summary {Path(self.records) / SUMMARY}"


def discover(sources: list[Path]) -> list[Path]:
    """Every regular file under the sources, in a stable order (hidden files and folders skipped)."""
    found: list[Path] = []
    for source in sources:
        if source.is_file():
            found.append(source.resolve())
            continue
        if not source.is_dir():
            raise UsageError(f"{source}: no such file or folder")
        for root, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(Path(root, f).resolve() for f in sorted(files) if not f.startswith("."))
    return sorted(set(found))


def source_ref(key: SecretKey, path: Path) -> str:
    info = path.stat()
    return key.hexdigest("source", f"{path}\x00{info.st_size}\x00{info.st_mtime_ns}")[:32]


class Journal:
    """Append-only record of finished sources (fsync'd per line); read back to skip them.

    With an audit trail, each batch's audit lines are made durable with its outputs, before the
    batch is journalled: an object the journal calls done has its audit line on disk."""

    def __init__(self, records: Path, trail: AuditTrail | None = None) -> None:
        self.path = records / JOURNAL
        self.trail = trail
        self.done: dict[str, dict] = {}
        cut = False
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    cut = not line.endswith("\n")
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut by a crash
                    self.done[entry["ref"]] = entry
        self._pending: list[str] = []
        self._flusher: threading.Thread | None = None
        self._handle = open(self.path, "a", encoding="utf-8")
        if cut:  # end the cut line, or the first new entry would be glued to it and lost
            self._handle.write("\n")
        os.chmod(self.path, 0o600)

    def is_done(self, ref: str, paths: RunPaths) -> bool:
        entry = self.done.get(ref)
        if entry is None:
            return False
        if entry["status"] == "written":
            return (paths.out / entry["output"]).is_file()
        return (paths.quarantine / entry["quarantine"]).is_dir()

    def record(self, ref: str, outcome: Outcome) -> None:
        """Queue an entry; it reaches the journal once its output is on disk (see ``_commit``)."""
        entry = {"ref": ref, "status": outcome.status, "output": outcome.output, "quarantine": outcome.quarantine}
        if outcome.status == "written":  # released values, so a later skip can still be audited
            entry.update(sop_class_uid=outcome.sop_class_uid, modality=outcome.modality,
                         patient_id=outcome.patient_id, study_uid=outcome.study_uid,
                         series_uid=outcome.series_uid, sop_uid=outcome.sop_uid)
        self._pending.append(json.dumps(entry) + "\n")
        if len(self._pending) >= BATCH and (self._flusher is None or not self._flusher.is_alive()):
            self._wait()
            batch, self._pending = self._pending, []
            # sync in the background: the disk flushes while the next files are de-identified
            self._flusher = threading.Thread(target=self._commit, args=(batch,), daemon=True)
            self._flusher.start()

    def _commit(self, batch: list[str]) -> None:
        """Make the batch's output files durable (one sync for many files), then journal them."""
        os.sync()
        if self.trail is not None:
            self.trail.flush()
        self._handle.write("".join(batch))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def _wait(self) -> None:
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None

    def close(self) -> None:
        self._wait()
        if self._pending:
            self._commit(self._pending)
            self._pending = []
        self._handle.close()


# -- worker processes ------------------------------------------------------------------------
_PIPELINE: Pipeline | None = None


def _init_pipeline(profile: Profile, key: SecretKey, out: Path, quarantine: Path, lookup: Mapping[str, str] | None) -> None:
    global _PIPELINE
    _PIPELINE = Pipeline(profile, key, out=out, quarantine=quarantine, lookup=lookup, durable=False)


def _init_worker(profile: Profile, key: SecretKey, out: Path, quarantine: Path, lookup: Mapping[str, str] | None) -> None:
    logs.configure()  # a worker process sets up its own logging; the calling process keeps its own
    _init_pipeline(profile, key, out, quarantine, lookup)


def _work(item: tuple[str, str]) -> tuple[str, Outcome]:
    ref, path = item
    assert _PIPELINE is not None
    return ref, _PIPELINE.process_file(Path(path))


def run(sources: list[Path], paths: RunPaths, profile: Profile, key: SecretKey, *, workers: int = 1,
        lookup: Mapping[str, str] | None = None, progress: bool | None = None) -> RunSummary:
    """De-identify every file under ``sources``; returns the summary (also written to the records)."""
    log = logs.get_logger("deid.run")
    started = time.monotonic()
    files = discover(sources)
    for source in sources:
        resolved = source.resolve()
        for name, folder in (("output", paths.out), ("quarantine", paths.quarantine), ("records", paths.records)):
            if folder == resolved or resolved in folder.parents:
                raise UsageError(f"{source}: the {name} folder must not be inside an input folder")
    paths.out.mkdir(parents=True, exist_ok=True)
    make_private_dir(paths.quarantine)
    make_private_dir(paths.records)
    lock = open(paths.records / "run.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"{paths.records}: another deid run is using these records; wait for it to finish") from None

    _remove_partial_files(paths.out)
    summary = RunSummary(
        run_id=uuid.uuid4().hex[:12], profile=profile.name, profile_version=profile.version,
        profile_sha256=profile.sha256, key_fingerprint=key.fingerprint, output=str(paths.out),
        quarantine=str(paths.quarantine), records=str(paths.records), total=len(files),
    )
    log.info("run started", run_id=summary.run_id, files=len(files), workers=workers, profile=profile.name)
    trail = AuditTrail(paths.records, key=key, profile=profile, run_id=summary.run_id, source="run")
    summary.audit = str(trail.path)
    journal = Journal(paths.records, trail)
    reasons: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    adjustments: Counter[str] = Counter()
    replaced: Counter[str] = Counter()
    todo: list[tuple[str, str]] = []
    for path in files:
        ref = source_ref(key, path)
        if journal.is_done(ref, paths):
            summary.skipped += 1
            trail.record(_skipped(journal.done[ref]))
        else:
            todo.append((ref, str(path)))

    bar = tqdm(total=len(todo), unit="obj", disable=(not sys.stderr.isatty()) if progress is None else not progress,
               file=sys.stderr, dynamic_ncols=True)

    def outcomes() -> Iterator[tuple[str, Outcome]]:
        if workers <= 1 or len(todo) < 2:
            _init_pipeline(profile, key, paths.out, paths.quarantine, lookup)
            yield from map(_work, todo)
            return
        # load the standard's tables once here, so forked workers inherit them instead of each parsing them
        from deid import standard

        standard.required_level("1.2.840.10008.5.1.4.1.1.2", (), 0x00100010)
        standard.row_for_tag(0x00100010)
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, _init_worker, (profile, key, paths.out, paths.quarantine, lookup)) as pool:
            yield from pool.imap_unordered(_work, todo, chunksize=4)

    try:
        for ref, outcome in outcomes():
            trail.record(outcome)  # before the journal: its batch sync makes this line durable too
            journal.record(ref, outcome)
            if outcome.status == "written":
                summary.written += 1
                summary.preexisting_problems += outcome.preexisting_problems
                actions.update(outcome.counts)
                adjustments.update(outcome.adjusted)
                replaced.update(outcome.text_replaced)
            else:
                summary.quarantined += 1
                code = (outcome.reason or {}).get("code", "unknown")
                reasons[code] += 1
                log.warning("quarantined", code=code, stage=(outcome.reason or {}).get("stage"),
                            path=(outcome.reason or {}).get("path"), quarantine=outcome.quarantine)
            bar.update(1)
            bar.set_postfix(quarantined=summary.quarantined, refresh=False)
    finally:
        bar.close()
        journal.close()
        trail.close()
        summary.reasons = dict(reasons)
        summary.actions = dict(sorted(actions.items()))
        summary.iod_adjustments = dict(sorted(adjustments.items()))
        summary.text_replaced = dict(sorted(replaced.items()))
        summary.deny_list_entries = len(profile.deny_list)
        summary.seconds = round(time.monotonic() - started, 3)
        _write_summary(paths.records, summary)
        lock.close()
    log.info("run finished", run_id=summary.run_id, written=summary.written, skipped=summary.skipped,
             quarantined=summary.quarantined, seconds=summary.seconds)
    return summary


def _skipped(entry: dict) -> Outcome:
    """The outcome of an object a previous run finished, from its journal entry (released values)."""
    fields = ("sop_class_uid", "modality", "patient_id", "study_uid", "series_uid", "sop_uid")
    return Outcome("skipped", output=entry.get("output"), quarantine=entry.get("quarantine"),
                   **{name: entry.get(name) or "" for name in fields})


def _remove_partial_files(out: Path) -> None:
    """Delete temp files a killed run left in the output (``.<name>.<pid>.partial``): never released."""
    for root, _dirs, files in os.walk(out):
        for name in files:
            if name.startswith(".") and name.endswith(".partial"):
                Path(root, name).unlink(missing_ok=True)


def _write_summary(records: Path, summary: RunSummary) -> None:
    from deid.io.writer import write_bytes_atomic

    write_bytes_atomic((json.dumps(asdict(summary), indent=2) + "\n").encode(), records / SUMMARY, mode=0o600)
    fsync_dir(records)
