"""`deid run`: de-identify folders of files into an output tree, resumably and in parallel.

Finished objects are recorded in a journal in the records folder (keyed by an HMAC of the source
path, size and mtime: no source path is stored), so a second run skips them and a run killed
half-way completes on the next start with nothing lost or doubled.

One run at a time writes into an output folder (a lock in it, whatever the records folder); its
temp files are named by its run id.  A full or read-only output, quarantine or records folder stops
the run with a message saying what to do (:class:`FolderNotWritable`); the same command run again
then completes the job.

The records know the key (fingerprint) and profile (sha256) the output was released with
(``release.json``, and each journal entry): a run with another key is refused, one with another
profile too unless it re-releases every source (``reprocess``).  ``from_quarantine`` runs over the
originals in the quarantine instead of source folders: each one released leaves the quarantine.
Each run's summary is kept (``summaries/<run id>.json``; ``summary.json`` is the latest).
"""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import os
import shutil
import sys
import time
import uuid
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from tqdm import tqdm

from deid import logs
from deid.audit.trail import AuditTrail
from deid.errors import UsageError
from deid.intake.folders import Discovery, Found, SourceFile, discover
from deid.io.source import shown
from deid.io.writer import (FolderLock, FolderLockedError, fsync_dir, remove_run_temps,
                            set_temp_owner)
from deid.keys import SecretKey
from deid.outcome import Outcome, Quarantined, Released, Skipped, Written
from deid.pipeline import Pipeline, make_private_dir, write_released
from deid.profile.model import Profile
from deid.released import DB_NAME as RELEASED_DB
from deid.released import ReleasedIndex
from deid.settlement import Batch

JOURNAL = "journal.jsonl"
BATCH = 64  # outputs made durable together with one sync, then journalled
TODO_CHUNK = 512  # sources handed to the workers at a time (two chunks in flight): flat memory
SUMMARY = "summary.json"  # the latest run's summary
SUMMARIES = "summaries"  # every run's summary, as <run id>.json
RELEASE = "release.json"  # the key fingerprint and profile the output is released with
REASON = "reason.json"  # in each quarantine entry
RETRIED = frozenset({"too-large"})  # quarantined for a limit of the run: tried again by every run
__all__ = ["RunPaths", "RunSummary", "FolderNotWritable", "check_paths", "discover", "run", "source_ref"]


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
    skipped_entries: dict[str, int] = field(default_factory=dict)  # input entries that are no file, by kind
    max_object_bytes: int = 0  # larger inputs were quarantined too-large without being read
    text_replaced: dict[str, int] = field(default_factory=dict)  # keyword -> identity values replaced in kept text
    deny_list_entries: int = 0  # entries of the deny-list searched in kept text (never the entries)
    from_quarantine: bool = False  # the run's input was the originals in its quarantine
    quarantine_waiting: int = 0  # entries in the quarantine after the run (this run's and earlier)
    quarantine_earlier: int = 0  # of those, entries left by earlier runs (not tried again by this one)
    left_quarantine: int = 0  # entries removed from the quarantine: their object is now released
    removed: int = 0  # outputs of another profile removed, the new profile releasing nothing there

    def line(self) -> str:
        if self.total == 0 and not self.quarantine_waiting:
            if self.from_quarantine:
                return f"deid run: the quarantine {self.quarantine} holds nothing to release again"
            return self._entries("deid run: no files found in the input: nothing to release")
        if self.total == 0:
            what = "the quarantine holds no original to release again" if self.from_quarantine else \
                "no files found in the input"
            return self._entries(f"deid run: {what}; {self._waiting()}")
        source = "originals in the quarantine" if self.from_quarantine else "objects"
        text = (f"deid run: {self.total} {source}: {self.written} written, {self.skipped} skipped "
                f"(already done), {self.quarantined} quarantined in {self.seconds:.1f}s; output {self.output}")
        if self.left_quarantine:
            text += f"; {self.left_quarantine} left the quarantine (released now)"
        if self.removed:
            text += f"; {self.removed} files of the earlier profile's release removed from the output"
        if self.text_replaced:
            text += f"; {sum(self.text_replaced.values())} identity values replaced in kept free text"
        if self.quarantined:
            text += f"; quarantine {self.quarantine} (reasons: " + ", ".join(
                f"{code} {n}" for code, n in sorted(self.reasons.items())) + ")"
        if self.quarantine_earlier:
            text += f"; {self._waiting()}"
        return self._entries(text) + f"; summary {Path(self.records) / SUMMARY}"

    def _waiting(self) -> str:
        return (f"{self.quarantine_earlier} objects wait in the quarantine {self.quarantine} from earlier "
                "runs (correct the cause, then deid run --from-quarantine)")

    def _entries(self, text: str) -> str:
        if self.skipped_entries:
            text += (f"; {sum(self.skipped_entries.values())} input entries skipped (not files: "
                     + ", ".join(f"{kind} {n}" for kind, n in sorted(self.skipped_entries.items())) + ")")
            if "link-outside-source" in self.skipped_entries:
                text += "; links leaving the source were refused: give --follow-links to follow them"
        return text

    @property
    def complete(self) -> bool:
        """Whether every object of the input is released and nothing waits in the quarantine (deid
        run exits 0; else 3).  An empty input is not complete; an empty quarantine given as input is."""
        return not self.quarantine_waiting and not self.quarantined and (self.total > 0 or self.from_quarantine)


def source_ref(key: SecretKey, source: SourceFile) -> str:
    """The journal key of a source: an HMAC of its path (as bytes, so any file name works; the same
    as the UTF-8 text of a UTF-8 name), size and time, so no path is stored."""
    data = os.fsencode(source.path) + f"\x00{source.size}\x00{source.mtime_ns}".encode()
    return key.hexdigest("source", data)[:32]


class Journal:
    """Append-only record of finished sources; read back to skip them.  The run's
    :class:`~deid.settlement.Ledger`: an outcome is recorded in the audit trail (when given),
    synced with its batch's outputs (one ``os.sync``), then journalled (released): an object the
    journal calls done has its output and its audit line on disk.  Journal lines reach the disk
    with the next batch's sync, or at :meth:`close`; one lost to a crash is done again."""

    def __init__(self, records: Path, trail: AuditTrail | None = None) -> None:
        self.path = records / JOURNAL
        self.trail = trail
        self.stamp: dict[str, str] = {}  # added to each entry: the profile and key it was made with
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
        self._handle = open(self.path, "a", encoding="utf-8")
        if cut:  # end the cut line, or the first new entry would be glued to it and lost
            self._handle.write("\n")
        os.chmod(self.path, 0o600)

    def is_done(self, ref: str, paths: RunPaths) -> bool:
        entry = self.done.get(ref)
        if entry is None:
            return False
        if made_with_another_profile(entry, self.stamp):
            return False  # released again (deid run --reprocess)
        if entry["status"] == "written":
            return (paths.out / entry["output"]).is_file()
        if not entry.get("quarantine") or entry.get("reason") in RETRIED:
            return False  # quarantined without an entry (unreadable), or under a limit that may change
        return (paths.quarantine / entry["quarantine"]).is_dir()

    # -- the run's Ledger (deid.settlement) -------------------------------------------------
    def record(self, ref: str, outcome: Outcome) -> None:
        """The outcome's audit line (it reaches the disk with its batch's sync)."""
        if self.trail is not None:
            self.trail.record(outcome)

    def sync(self) -> None:
        """Make the outputs written so far and their audit lines durable (one sync for many)."""
        os.sync()
        if self.trail is not None:
            self.trail.flush()

    def release(self, ref: str, outcome: Outcome) -> None:
        """Journal a source as done: a later run skips it."""
        entry: dict[str, object]
        match outcome:
            case Written(released=facts):  # released values, so a later skip can still be audited
                entry = {"ref": ref, "status": "written", "output": facts.output, "quarantine": None,
                         "sop_class_uid": facts.sop_class_uid, "modality": facts.modality,
                         "patient_id": facts.patient_id, "study_uid": facts.study_uid,
                         "series_uid": facts.series_uid, "sop_uid": facts.sop_uid, **self.stamp}
            case Quarantined(code=code, entry=quarantine):
                entry = {"ref": ref, "status": "quarantined", "output": None,
                         "quarantine": quarantine, "reason": code, **self.stamp}
            case _:
                raise TypeError(f"a run journals written or quarantined sources, not {outcome!r}")
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()

    def close(self) -> None:
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        finally:
            try:
                self._handle.close()
            except OSError:  # a full disk: what was not journalled is done again by a rerun
                pass


def made_with_another_profile(entry: Mapping[str, object], stamp: Mapping[str, str]) -> bool:
    """Whether a journal entry was made with another profile or deny-list than ``stamp`` names (an
    entry of a version that did not record them counts as made with this one)."""
    if "profile_sha256" not in entry or not stamp:
        return False
    return any(entry.get(name, "") != stamp.get(name, "") for name in ("profile_sha256", "deny_list_sha256"))


# -- worker processes ------------------------------------------------------------------------
_PIPELINE: Pipeline | None = None


def _init_pipeline(profile: Profile, key: SecretKey, out: Path, quarantine: Path, lookup: Mapping[str, str] | None,
                   run_id: str, max_object_bytes: int, debug: Path | None, released: ReleasedIndex) -> None:
    global _PIPELINE
    set_temp_owner(run_id)  # this process's temp files are this run's
    _PIPELINE = Pipeline(profile, key, out=out, quarantine=quarantine, lookup=lookup, durable=False,
                         max_object_bytes=max_object_bytes, debug=debug, released=released)


def _init_worker(profile: Profile, key: SecretKey, out: Path, quarantine: Path, lookup: Mapping[str, str] | None,
                 run_id: str, max_object_bytes: int, debug: Path | None, released: ReleasedIndex) -> None:
    logs.configure()  # a worker process sets up its own logging; the calling process keeps its own
    _init_pipeline(profile, key, out, quarantine, lookup, run_id, max_object_bytes, debug, released)


def _work(item: tuple[str, str, str]) -> tuple[str, Outcome]:
    """(journal ref, source path, the source's name in a quarantine entry) -> (ref, outcome)."""
    ref, path, name = item
    assert _PIPELINE is not None
    outcome = _PIPELINE.deidentify_file(Path(path), name)
    return ref, write_released(outcome, _PIPELINE.out, durable=False)  # synced with its batch


class FolderNotWritable(UsageError):
    """The output, quarantine or records folder is full, read-only or not ours to write (exit 2);
    the message says which and what to do.  Running the same command again completes the job."""


#: errors of the machine, not of deid or of an object: disk full, quota, read-only, permissions
_ENVIRONMENT = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "read-only",
                errno.EACCES: "not writable", errno.EPERM: "not writable"}


def run(sources: list[Path], paths: RunPaths, profile: Profile, key: SecretKey, *, workers: int = 1,
        lookup: Mapping[str, str] | None = None, progress: bool | None = None,
        follow_links: bool = False, max_object_bytes: int | None = None, debug: bool = False,
        cluster: str | None = None, from_quarantine: bool = False,
        reprocess: bool = False) -> RunSummary:
    """De-identify every file under ``sources``; returns the summary (also written to the records).

    ``follow_links``: follow links that leave the source folders (refused by default);
    ``max_object_bytes``: larger files are quarantined ``too-large`` unread (default: the profile's);
    ``debug``: the traceback of an internal error also goes to RECORDS/debug/ (never to the log);
    ``cluster``: a Dask scheduler address or local:N, whose workers do the work (deid.cluster);
    ``from_quarantine``: the input is the originals in ``paths.quarantine`` (``sources`` empty);
    ``reprocess``: the profile differs from the output's: release every source again with it.
    An empty input writes nothing (the summary's ``total`` is 0)."""
    started = time.monotonic()
    check_paths(sources, paths, from_quarantine=from_quarantine)
    found: Found | Discovery
    if from_quarantine:
        found, names = quarantined_originals(paths.quarantine)
    else:
        found = Discovery(sources, follow_links=follow_links)  # walked as the run goes
        names = source_names(sources)
    if found.is_empty():
        summary = _summary(paths, profile, key, max_object_bytes or profile.max_object_bytes)
        for _ in found:  # no file: the walk only counts what it skipped
            pass
        summary.skipped_entries = dict(sorted(found.skipped.items()))
        summary.from_quarantine = from_quarantine
        summary.quarantine_waiting = summary.quarantine_earlier = len(quarantine_entries(paths.quarantine))
        return summary
    try:
        paths.out.mkdir(parents=True, exist_ok=True)
        make_private_dir(paths.quarantine)
        make_private_dir(paths.records)
        with _locked(paths):
            check_release(paths, profile, key, reprocess=reprocess, from_quarantine=from_quarantine)
            summary = _run(found, paths, profile, key, workers=workers, lookup=lookup, progress=progress,
                           max_bytes=max_object_bytes or profile.max_object_bytes, started=started,
                           debug=debug, names=names, from_quarantine=from_quarantine, cluster=cluster)
            fsync_dir(paths.quarantine)
            return summary
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT:
            raise
        raise FolderNotWritable(_advice(exc, paths)) from None


_FLAGS = {"output": "--out", "quarantine": "--quarantine", "records": "--records"}


def check_paths(sources: list[Path], paths: RunPaths, *, from_quarantine: bool = False) -> None:
    """Refuse (:class:`UsageError`, exit 2, saying what to do) folders that would mix an input
    with the output, quarantine or records, either way round, or a folder that is a file."""
    folders = {"output": paths.out, "quarantine": paths.quarantine, "records": paths.records}
    for name, folder in folders.items():
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{_FLAGS[name]} {folder} is a file, not a folder: give a new folder "
                             "(deid makes it) or one an earlier deid run made")
    for name, folder in folders.items():
        for other, inner in folders.items():
            if name != other and _inside(inner, folder):
                raise UsageError(f"the {other} folder {inner} is inside the {name} folder {folder}: give "
                                 "folders side by side (the defaults are OUT-quarantine and OUT-records "
                                 f"beside OUT), e.g. another {_FLAGS[other]}")
    for source in sources:
        resolved = source.resolve()
        for name, folder in folders.items():  # (a link to the input inside the output counts too)
            if _inside(resolved, folder) or _inside(Path(os.path.abspath(source)), folder):
                hint = ("the output holds only what may be released" if name == "output" else
                        "deid writes and removes files there")
                raise UsageError(f"{source}: this input is inside the {name} folder {folder} ({hint}); "
                                 f"move the input out of it, or give another {_FLAGS[name]}" +
                                 ("; to release the quarantine again, give --from-quarantine "
                                  f"{folder} instead of SRC" if name == "quarantine" else ""))
            if _inside(folder, resolved):
                raise UsageError(f"{source}: the {name} folder {folder} is inside this input, so the "
                                 f"run would read what it writes; give {_FLAGS[name]} outside every input")
        if any(_entries(resolved)):
            raise UsageError(f"{source}: this input is a deid quarantine (its entries hold originals and "
                             f"reason.json): to release it again, give --from-quarantine {source} instead of SRC")


def source_names(sources: list[Path]) -> Callable[[Path], str]:
    """The name a quarantine entry gives a found file: its path relative to the SRC argument it
    was found under (its own name when SRC is the file, or a followed link led outside)."""
    roots = [source.resolve() for source in sources if source.is_dir()]

    def name(path: Path) -> str:
        for root in roots:
            if path.is_relative_to(root):
                return shown(path.relative_to(root))
        return shown(path.name)

    return name


def quarantine_entries(quarantine: Path) -> list[Path]:
    """The entries of a quarantine folder (each a folder with a reason.json)."""
    return sorted(_entries(quarantine))


def _entries(quarantine: Path) -> Iterator[Path]:
    if quarantine.is_dir():
        yield from (entry for entry in quarantine.iterdir()
                    if not entry.name.startswith(".") and (entry / REASON).is_file())


def quarantined_originals(quarantine: Path) -> tuple[Found, Callable[[Path], str]]:
    """The originals kept in a quarantine (as found files), and the name each had in its source
    (reason.json's ``source``; else the original's own name).  An entry of a file that was not
    read (too-large) holds no original: it stays, and a run over its source tries it again."""
    files: list[SourceFile] = []
    known: dict[Path, str] = {}
    if not quarantine.is_dir():
        raise UsageError(f"--from-quarantine {quarantine}: no such folder")
    for entry in quarantine_entries(quarantine):
        try:
            reason = json.loads((entry / REASON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            reason = {}
        for original in sorted(entry.glob("original*")):
            info = original.stat()
            files.append(SourceFile(original, info.st_size, info.st_mtime_ns))
            source = reason.get("source") if isinstance(reason, dict) else None
            known[original] = source if isinstance(source, str) and source else original.name
    return Found(files), lambda path: known.get(path, path.name)


def check_release(paths: RunPaths, profile: Profile, key: SecretKey, *, reprocess: bool,
                  from_quarantine: bool) -> None:
    """Refuse (exit 2) a run whose key, or profile (unless ``reprocess``), differs from the ones the
    output was released with (the records' release.json); then record this run's."""
    record = paths.records / RELEASE
    journal = paths.records / JOURNAL
    this = {"key_fingerprint": key.fingerprint, "profile": profile.name, "profile_version": profile.version,
            "profile_sha256": profile.sha256, "deny_list_sha256": profile.deny_list_sha256}
    made: dict = {}
    if record.is_file() and journal.is_file() and journal.stat().st_size:  # (nothing done: nothing to keep)
        try:
            made = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UsageError(f"{record} cannot be read, so nothing says which key and profile {paths.out} "
                             "was released with; restore it from a backup, or release into a new output "
                             "folder (--out NEW)") from None
    new_output = ("release into a new output folder (--out NEW; its quarantine and records go beside "
                  "it)")
    if made and made.get("key_fingerprint") != key.fingerprint:
        raise UsageError(
            f"{paths.out} was released with another key (fingerprint {made.get('key_fingerprint')}; this "
            f"key's is {key.fingerprint}): a second key would release the same patients again under other "
            f"pseudonyms. Give the key it was released with, or {new_output}")
    if made and (made.get("profile_sha256"), made.get("deny_list_sha256", "")) != (profile.sha256,
                                                                                   profile.deny_list_sha256):
        what = (f"{paths.out} was released with profile '{made.get('profile')}' {made.get('profile_version')} "
                f"(sha256 {str(made.get('profile_sha256'))[:12]}); this profile '{profile.name}' "
                f"{profile.version} (sha256 {profile.sha256[:12]}) differs")
        if made.get("profile_sha256") == profile.sha256:
            what = (f"{paths.out} was released with profile '{profile.name}' and another deny-list "
                    f"(sha256 {str(made.get('deny_list_sha256'))[:12] or 'none'}; this run's is "
                    f"{profile.deny_list_sha256[:12] or 'none'})")
        if from_quarantine:
            raise UsageError(
                f"{what}, and the output would mix the two. Release the whole input again with it: deid "
                f"run SRC --out {paths.out} --profile ... --reprocess (what is released leaves the "
                f"quarantine), or {new_output} with --from-quarantine {paths.quarantine}")
        if not reprocess:
            raise UsageError(
                f"{what}. Give --reprocess to release every source again with it (what it no longer "
                f"releases is removed from the output), or {new_output}")
    if made != this:
        from deid.io.writer import write_bytes_atomic

        write_bytes_atomic((json.dumps(this, indent=2) + "\n").encode(), record, mode=0o600)
        fsync_dir(paths.records)


@contextmanager
def _locked(paths: RunPaths) -> Iterator[None]:
    """Hold the records' lock and the output's lock (one run per records folder, one per output)."""
    with open(paths.records / "run.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{paths.records}: another deid run is using these records; wait for it to "
                             "finish") from None
        try:
            out_lock = FolderLock(paths.out)
        except FolderLockedError:
            raise UsageError(f"{paths.out}: another deid run is writing into this output folder (whatever "
                             "its records folder); wait for it to finish, or give another --out") from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise
            raise UsageError(f"{paths.out}: the output's file system cannot lock files (flock), so deid "
                             "cannot keep a second run out; give an --out on a local disk") from None
        try:
            yield
        finally:
            set_temp_owner("")
            out_lock.release()


def _advice(exc: OSError, paths: RunPaths) -> str:
    """What went wrong with which folder, and what to do: never a source path or a value."""
    problem = _ENVIRONMENT[exc.errno or 0]
    folders = (("output", "--out", paths.out), ("quarantine", "--quarantine", paths.quarantine),
               ("records", "--records", paths.records))
    named = [f for f in folders if exc.filename and _inside(Path(os.fsdecode(exc.filename)), f[2])]
    if not named:  # a write on an open file names none: find the folder from its file system
        named = [f for f in folders if _looks(problem, f[2])] or list(folders)
    which = " or ".join(f"the {name} folder {folder}" for name, _flag, folder in named)
    flags = " or ".join(flag for _name, flag, _folder in named)
    fix = {"full": "free space on its disk", "read-only": "mount it read-write",
           "not writable": "give this user write permission on it"}[problem]
    cause = {"full": "the disk is full (or the quota is used up)", "read-only": "it is read-only",
             "not writable": "this user may not write there"}[problem]
    return (f"cannot write into {which}: {cause}. {fix[0].upper() + fix[1:]} (or give another {flags}), "
            "then run the same command again: it keeps what is done and completes the rest")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _looks(problem: str, folder: Path) -> bool:
    """Whether ``folder`` (or the nearest existing folder above it) shows ``problem``."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return False
    if problem == "full":
        return info.f_bavail * info.f_frsize < (1 << 20)
    if problem == "read-only":
        return bool(info.f_flag & os.ST_RDONLY)
    return not os.access(folder, os.W_OK)


def _summary(paths: RunPaths, profile: Profile, key: SecretKey, max_bytes: int) -> RunSummary:
    """A run's summary before its first object (its totals are added as the run goes)."""
    return RunSummary(
        run_id=uuid.uuid4().hex[:12], profile=profile.name, profile_version=profile.version,
        profile_sha256=profile.sha256, key_fingerprint=key.fingerprint, output=str(paths.out),
        quarantine=str(paths.quarantine), records=str(paths.records), max_object_bytes=max_bytes,
    )


def _run(found: Found | Discovery, paths: RunPaths, profile: Profile, key: SecretKey, *, workers: int,
         lookup: Mapping[str, str] | None, progress: bool | None, max_bytes: int,
         started: float, debug: bool, names: Callable[[Path], str], from_quarantine: bool,
         cluster: str | None = None) -> RunSummary:
    """The run itself, with the folders made and locked."""
    log = logs.get_logger("deid.run")
    remove_run_temps(paths.out)  # we hold the output's lock: these are left by runs that were killed
    summary = _summary(paths, profile, key, max_bytes)
    summary.from_quarantine = from_quarantine
    set_temp_owner(summary.run_id)
    log.info("run started", run_id=summary.run_id, workers=workers, profile=profile.name)
    trail = AuditTrail(paths.records, key=key, profile=profile, run_id=summary.run_id, source="run")
    summary.audit = str(trail.path)
    journal = Journal(paths.records, trail)
    journal.stamp = {"profile_sha256": profile.sha256, "key_fingerprint": key.fingerprint}
    if profile.deny_list_sha256:
        journal.stamp["deny_list_sha256"] = profile.deny_list_sha256
    settled = Batch(journal, BATCH)  # record -> one sync per batch -> journal (deid.settlement)
    # released UIDs of every run with these records (the batch sync makes its lines durable too)
    released = ReleasedIndex(paths.records / RELEASED_DB, durable=False)
    stale = _remove_stale(journal, paths.out, released)
    book = QuarantineBook(paths.quarantine, journal.done)
    shown_once = logs.FirstOfEach()
    reasons: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    adjustments: Counter[str] = Counter()
    replaced: Counter[str] = Counter()
    debug_dir = paths.records if debug else None

    def todo() -> Iterator[list[tuple[str, str, str]]]:
        """The sources still to do, in chunks, as the walk finds them (done ones skipped here)."""
        chunk: list[tuple[str, str, str]] = []
        for source in found:
            ref = source_ref(key, source)
            if from_quarantine:
                book.came_from(ref, source.path)
            if journal.is_done(ref, paths):
                summary.skipped += 1
                trail.record(_skipped(journal.done[ref]))
                book.done_before(ref)
                bar.update(1)  # the bar counts every file found, done before or now
                continue
            chunk.append((ref, str(source.path), names(source.path)))
            if len(chunk) == TODO_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    shown = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=found.files_now() if shown else None, unit="obj", disable=not shown,
               file=sys.stderr, dynamic_ncols=True)
    logs.show_above(bar)  # log lines go above the bar, never through it

    def outcomes() -> Iterator[tuple[str, Outcome]]:
        chunks = todo()
        if cluster is not None:  # on a Dask cluster: outcomes in todo's order, written ones in place
            from deid.cluster.client import outcomes_on_cluster

            # the cluster sizes its tasks from the whole list (a list of the files still to do)
            listed = [item for chunk in chunks for item in chunk]
            yield from outcomes_on_cluster(cluster, listed, profile=profile, key=key, out=paths.out,
                                           quarantine=paths.quarantine, lookup=lookup, run_id=summary.run_id,
                                           max_object_bytes=max_bytes, debug=debug_dir, released=released)
            return
        first = next(chunks, [])
        if workers <= 1 or len(first) < 2:
            _init_pipeline(profile, key, paths.out, paths.quarantine, lookup, summary.run_id, max_bytes,
                           debug_dir, released)
            yield from map(_work, first)
            for chunk in chunks:
                yield from map(_work, chunk)
            return
        # load the standard's tables once here, so forked workers inherit them instead of each parsing them
        from deid import standard

        standard.required_level("1.2.840.10008.5.1.4.1.1.2", (), 0x00100010)
        standard.row_for_tag(0x00100010)
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, _init_worker, (profile, key, paths.out, paths.quarantine, lookup,
                                                  summary.run_id, max_bytes, debug_dir, released)) as pool:
            # two chunks in flight: the workers never wait for the walk, and nothing grows
            pending = deque([pool.imap_unordered(_work, first, chunksize=4)])
            for chunk in chunks:
                pending.append(pool.imap_unordered(_work, chunk, chunksize=4))
                yield from pending.popleft()
            while pending:
                yield from pending.popleft()

    try:
        for ref, outcome in outcomes():
            settled.settle(ref, outcome)
            book.note(ref, outcome)
            match outcome:
                case Written(released=facts):
                    summary.written += 1
                    summary.preexisting_problems += facts.preexisting_problems
                    actions.update(facts.counts)
                    adjustments.update(facts.adjusted)
                    replaced.update(facts.text_replaced)
                case Quarantined():
                    summary.quarantined += 1
                    reasons[outcome.code] += 1
                    if shown_once.first(outcome.code):  # the entry is named, never the source
                        log.warning("quarantined", code=outcome.code, stage=outcome.stage or None,
                                    path=outcome.path or None, quarantine=outcome.entry)
            bar.update(1)
            bar.set_postfix(quarantined=summary.quarantined, refresh=False)
    finally:
        bar.close()
        logs.show_above(None)
        summary.total = summary.skipped + summary.written + summary.quarantined
        summary.skipped_entries = dict(sorted(found.skipped.items()))
        for kind, count in summary.skipped_entries.items():  # counts only: a name may hold identity
            log.warning("input entries skipped", code=kind, count=count)
        summary.reasons = dict(reasons)
        summary.actions = dict(sorted(actions.items()))
        summary.iod_adjustments = dict(sorted(adjustments.items()))
        summary.text_replaced = dict(sorted(replaced.items()))
        summary.deny_list_entries = len(profile.deny_list)
        summary.seconds = round(time.monotonic() - started, 3)
        journalled: list[bool] = []

        def close_journal() -> None:
            journal.close()
            journalled.append(True)

        def settle() -> None:  # once the journal holds the releases: what they make of the quarantine
            if journalled:
                summary.left_quarantine = book.settle()
            waiting = {entry.name for entry in quarantine_entries(paths.quarantine)}
            summary.quarantine_waiting = len(waiting)
            summary.quarantine_earlier = len(waiting - book.made)
            summary.removed = len(stale - book.outputs)

        # each step even when one fails (a full disk): the first error is raised
        _each(settled.close, close_journal, trail.close, settle,
              lambda: _write_summary(paths.records, summary))
    for code, count in shown_once.held_back().items():
        log.warning("more quarantined (not logged one by one)", code=code, count=count)
    log.info("run finished", run_id=summary.run_id, written=summary.written, skipped=summary.skipped,
             quarantined=summary.quarantined, seconds=summary.seconds)
    return summary


class QuarantineBook:
    """Which quarantine entries a run makes, and which leave the quarantine once the journal holds
    their object's release: an original released from the quarantine (``came_from``), or a source
    an earlier run quarantined that this run released.  Holds entry names and output paths only."""

    def __init__(self, quarantine: Path, done: Mapping[str, dict]) -> None:
        self.quarantine = quarantine
        self.done = done  # the journal's entries of earlier runs, by ref
        self.entry_of: dict[str, str] = {}  # ref -> the entry whose original it is (--from-quarantine)
        self.made: set[str] = set()  # entries this run quarantined into
        self.leaving: set[str] = set()  # entries whose object is released
        self.outputs: set[str] = set()  # outputs this run released or found done

    def came_from(self, ref: str, original: Path) -> None:
        self.entry_of[ref] = original.parent.name

    def done_before(self, ref: str) -> None:
        """A source an earlier run finished (skipped by this one)."""
        entry = self.done[ref]
        if entry.get("status") == "written":
            self.outputs.add(entry.get("output") or "")
            if ref in self.entry_of:  # released, but the run ended before its entry left
                self.leaving.add(self.entry_of[ref])

    def note(self, ref: str, outcome: Outcome) -> None:
        if not isinstance(outcome, Written):
            quarantine = outcome.entry if isinstance(outcome, Quarantined) else None
            if quarantine:
                self.made.add(quarantine)
                if self.entry_of.get(ref, quarantine) != quarantine:
                    self.leaving.add(self.entry_of[ref])  # an edited original: now in its new entry
            return
        self.outputs.add(outcome.released.output)
        before = self.done.get(ref) or {}
        if ref in self.entry_of:
            self.leaving.add(self.entry_of[ref])
        elif before.get("status") == "quarantined" and before.get("quarantine"):
            self.leaving.add(before["quarantine"])

    def settle(self) -> int:
        """Remove the entries whose object is released (not one this run quarantined into); how many."""
        gone = 0
        for name in sorted(self.leaving - self.made):
            entry = self.quarantine / name
            if entry.is_dir():
                shutil.rmtree(entry)
                gone += 1
        return gone


def _remove_stale(journal: Journal, out: Path, released: ReleasedIndex) -> set[str]:
    """Remove the outputs the journal says another profile released (``deid run --reprocess``
    releases their sources again with this one; check_release refused the run otherwise), and
    their claims in the released index; returns their paths."""
    entries = [e for e in journal.done.values() if e.get("status") == "written" and e.get("output")]
    old = [made_with_another_profile(e, journal.stamp) for e in entries]
    kept = {e["output"] for e, other in zip(entries, old) if not other}
    kept_uids = {e.get("sop_uid") for e, other in zip(entries, old) if not other}
    stale = {e["output"]: e.get("sop_uid") or "" for e, other in zip(entries, old)
             if other and e["output"] not in kept}
    for output in stale:
        path = out / output
        path.unlink(missing_ok=True)
        for folder in path.parents:  # and the folders it leaves empty
            if folder == out or not _inside(folder, out) or any(folder.iterdir()):
                break
            folder.rmdir()
    forgotten = [uid for uid in stale.values() if uid and uid not in kept_uids]
    if forgotten:
        released.forget(forgotten)
    return set(stale)


def _skipped(entry: dict) -> Skipped:
    """The outcome of an object a previous run finished, from its journal entry (released values)."""
    if entry.get("status") != "written":
        return Skipped(quarantine=entry.get("quarantine"))
    value = {name: str(entry.get(name) or "") for name in
             ("output", "sop_class_uid", "modality", "patient_id", "study_uid", "series_uid", "sop_uid")}
    facts = Released(value["output"], sop_class_uid=value["sop_class_uid"], modality=value["modality"],
                     patient_id=value["patient_id"], study_uid=value["study_uid"],
                     series_uid=value["series_uid"], sop_uid=value["sop_uid"])
    return Skipped(facts, entry.get("quarantine"))


def _each(*steps: Callable[[], object]) -> None:
    """Run every step; raise the first error once all were tried."""
    error: BaseException | None = None
    for step in steps:
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - raised below, after the other steps
            error = error or exc
    if error is not None:
        raise error


def _write_summary(records: Path, summary: RunSummary) -> None:
    """This run's summary, kept (summaries/<run id>.json), and as the latest (summary.json)."""
    from deid.io.writer import write_bytes_atomic

    text = (json.dumps(asdict(summary), indent=2) + "\n").encode()
    kept = make_private_dir(records / SUMMARIES)
    write_bytes_atomic(text, kept / f"{summary.run_id}.json", mode=0o600)
    fsync_dir(kept)
    write_bytes_atomic(text, records / SUMMARY, mode=0o600)
    fsync_dir(records)
