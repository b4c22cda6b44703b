"""The pipeline of a process doing a run's objects: this process, or each forked worker."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deid import logs
from deid.io.writer import set_temp_owner
from deid.keys import SecretKey
from deid.outcome import Outcome
from deid.pipeline import Pipeline, write_released
from deid.profile.model import Profile
from deid.released import ReleasedIndex
from deid.staging import Done, stage


@dataclass(frozen=True)
class PipelineSetup:
    """What the pipeline of each process of a run is made from (the same for all of them; the
    key and the lookup are here: never in a repr)."""

    profile: Profile = field(repr=False)
    key: SecretKey = field(repr=False)
    out: Path
    quarantine: Path
    lookup: Mapping[str, str] | None = field(repr=False)  # patient IDs
    run_id: str
    max_object_bytes: int
    debug: Path | None  # where an internal error's traceback goes (deid run --debug)
    released: ReleasedIndex | None = field(repr=False)


_PIPELINE: Pipeline | None = None  # this process's, made once by _init_pipeline


def _init_pipeline(setup: PipelineSetup) -> None:
    global _PIPELINE
    set_temp_owner(setup.run_id)  # this process's temp files are this run's
    _PIPELINE = Pipeline(setup.profile, setup.key, out=setup.out, quarantine=setup.quarantine,
                         lookup=setup.lookup, durable=False,
                         max_object_bytes=setup.max_object_bytes, debug=setup.debug,
                         released=setup.released)


def _init_worker(setup: PipelineSetup) -> None:
    """A forked worker: its pipeline claims nothing (the released index is the placing process's:
    deid.staging), it stages what it releases."""
    global _SETUP
    logs.configure()  # a worker process sets up its own logging; the calling process keeps its own
    _SETUP = setup
    _init_pipeline(dataclasses.replace(setup, released=None))


_SETUP: PipelineSetup | None = None  # a forked worker's (for where it stages)


def local_pipeline(setup: PipelineSetup) -> Pipeline:
    """A pipeline with the released index, in the placing process: for an object to do again
    when other content holds its place or UID (deid.staging.Placer)."""
    return Pipeline(setup.profile, setup.key, out=setup.out, quarantine=setup.quarantine,
                    lookup=setup.lookup, durable=False, max_object_bytes=setup.max_object_bytes,
                    debug=setup.debug, released=setup.released)


def _stage(item: tuple[str, str, str]) -> Done:
    """In a forked worker: (journal ref, source path, name in a quarantine entry) -> the source's
    outcome, its released bytes staged beside their place (deid.staging)."""
    ref, path, name = item
    assert _PIPELINE is not None and _SETUP is not None
    return stage(_PIPELINE.deidentify_file(Path(path), name), _SETUP.out, _SETUP.run_id, ref,
                 path, name)


def _work(item: tuple[str, str, str]) -> tuple[str, Outcome]:
    """(journal ref, source path, the source's name in a quarantine entry) -> (ref, outcome)."""
    ref, path, name = item
    assert _PIPELINE is not None
    outcome = _PIPELINE.deidentify_file(Path(path), name)
    return ref, write_released(outcome, _PIPELINE.out, durable=False)  # synced with its batch
