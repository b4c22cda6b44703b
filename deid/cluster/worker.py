"""What a Dask worker does for ``deid run --cluster``: de-identify a batch of files and stage them.

The run's settings (profile, secret key, lookup, folders) reach each worker once, in memory, as a
Dask worker plugin (:class:`RunOnWorker`); tasks carry only a sealed batch of files.  A worker
releases nothing itself: each written object's bytes go to a *staged* file beside its place in
the output (a hidden run temp name, see :func:`deid.staging.staged_name`), and the client, in input order,
claims its SOP Instance UID and renames it into place (deid.staging).  So whatever the
order in which workers finish, and however often a task is run again after a worker was lost,
the output is the one a local ``--workers 1`` run makes.  Quarantine entries are written here:
their names and contents depend only on the object.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from distributed import WorkerPlugin, get_worker

from deid import logs
from deid.cluster.envelope import Sealed, dumps, seal, unseal
from deid.io.writer import OUTPUT_LOCK, set_temp_owner, sync_file_systems
from deid.keys import SecretKey
from deid.pipeline import Pipeline
from deid.profile.model import Profile
from deid.staging import Done, stage

#: the worker pipeline's output folder: never made, so no released file is seen there (the client
#: checks what is already released, in input order)
UNCLAIMED = ".deid-cluster-unclaimed"


@dataclass
class RunSettings:
    """What every worker needs to make a run's outcomes (held in memory only: the key is here)."""

    profile: Profile = field(repr=False)
    key: SecretKey = field(repr=False)
    lookup: Mapping[str, str] | None = field(repr=False)  # patient IDs: never in a repr
    out: Path
    quarantine: Path
    debug: Path | None  # the records folder with --debug (tracebacks of internal errors)
    run_id: str
    max_object_bytes: int
    code: str  # code_fingerprint() of the client: a worker running other code refuses the run


@dataclass
class BatchResult:
    """A task's answer: the outcomes done, then the error of the output's disk that stopped it,
    or why this worker cannot take part (``refused``)."""

    worker: str = ""  # the worker's address (no identity)
    done: list[Done] = field(default_factory=list)
    error: tuple[int, str, str | None] | None = None  # OSError (errno, strerror, filename)
    refused: str = ""


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of this deid's files (code, profiles, tables): equal on client and workers, or the
    bytes could differ."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    files = (p for p in root.rglob("*") if p.suffix in (".py", ".yaml", ".json") and "__pycache__" not in p.parts)
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\x00" + path.read_bytes() + b"\x00")
    return digest.hexdigest()[:16]


def what_this_worker_sees(out: str, quarantine: str, debug: str = "") -> tuple[str, bool]:
    """The code fingerprint here and whether the run's folders are here (the output's lock file,
    the quarantine, and with --debug the records)."""
    folders = Path(out, OUTPUT_LOCK).is_file() and Path(quarantine).is_dir()
    return code_fingerprint(), folders and (not debug or Path(debug).is_dir())


class RunOnWorker(WorkerPlugin):
    """A run's settings on a worker, and one pipeline per worker thread.  Pickled only to travel
    (as the settings' bytes); registered under :attr:`name` and removed when the run ends."""

    def __init__(self, name: str, settings: bytes) -> None:
        self.name = name
        self._settings_bytes = settings
        self.settings: RunSettings | None = None
        self._local = threading.local()

    @classmethod
    def of(cls, name: str, settings: RunSettings) -> RunOnWorker:
        return cls(name, dumps(settings))

    def __getstate__(self) -> dict:
        return {"name": self.name, "settings": self._settings_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"], state["settings"])  # type: ignore[misc]

    def setup(self, worker: object) -> None:
        import pickle

        self.settings = pickle.loads(self._settings_bytes)
        self._settings_bytes = b""
        logs.configure()  # deid's log lines here pass the PHI allow-list, as in a local worker
        set_temp_owner(self.settings.run_id)

    def teardown(self, worker: object) -> None:
        self.settings = None
        self._local = threading.local()
        set_temp_owner("")

    def pipeline(self) -> Pipeline:
        """This thread's pipeline (made at its first task; pipelines are not shared by threads)."""
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            s = self._need()
            pipeline = Pipeline(s.profile, s.key, out=s.out / UNCLAIMED, quarantine=s.quarantine,
                                lookup=s.lookup, durable=False, max_object_bytes=s.max_object_bytes,
                                debug=s.debug, released=None)
            self._local.pipeline = pipeline
        return pipeline

    def _need(self) -> RunSettings:
        if self.settings is None:
            raise RuntimeError("the run's settings are not on this worker")
        return self.settings

    def run_batch(self, batch: Sealed) -> Sealed:
        s = self._need()
        result = BatchResult(worker=get_worker().address)
        fingerprint, sees = what_this_worker_sees(str(s.out), str(s.quarantine), str(s.debug or ""))
        if fingerprint != s.code:
            result.refused = "other-code"
        elif not sees:
            result.refused = "no-shared-folders"
        else:
            self._deidentify(unseal(s.key, s.run_id, batch), result)
        return seal(s.key, s.run_id, result)

    def _deidentify(self, files: list[tuple[str, str, str]], result: BatchResult) -> None:
        s = self._need()
        pipeline = self.pipeline()
        try:
            for ref, path, name in files:
                outcome = pipeline.deidentify_file(Path(path), name)
                if self.settings is not s or not _still_wanted():  # its client is gone: stage nothing more
                    break
                result.done.append(stage(outcome, s.out, s.run_id, ref, path, name))
        except OSError as exc:  # the output's or quarantine's disk: the client stops the run
            result.error = (exc.errno or 0, exc.strerror or "", os.fsdecode(exc.filename) if exc.filename else None)
        if any(done.staged for done in result.done):
            sync_file_systems([s.out])  # the staged bytes are on disk before the client renames them


def _still_wanted() -> bool:
    """Whether the scheduler still wants the task this thread runs: not once its client left or
    cancelled it (a running task cannot be stopped; it stops before its next write)."""
    try:
        worker = get_worker()
        task = worker.state.tasks.get(worker.get_current_task())
    except Exception:  # noqa: BLE001 - not in a task, or another Dask: go on
        return True
    return task is None or task.state != "cancelled"


def deidentify_batch(plugin: str, batch: Sealed) -> Sealed:
    """The task: a sealed list of (journal key, source path, name) -> a sealed :class:`BatchResult`."""
    settings = get_worker().plugins[plugin]
    assert isinstance(settings, RunOnWorker)
    return settings.run_batch(batch)
