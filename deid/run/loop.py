"""The run: check and lock the folders, walk the input, have each object done (in this process,
forked workers or on a Dask cluster), settle and count its outcome, and keep the summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from itertools import chain, islice
from pathlib import Path

from deid import logs
from deid.audit.trail import AuditTrail
from deid.errors import ObjectError
from deid.intake.folders import Discovery, Found
from deid.io.writer import fsync_dir, remove_run_temps, set_temp_owner
from deid.keys import SecretKey
from deid.outcome import Outcome, Quarantined
from deid.pipeline import Pipeline, make_private_dir
from deid.profile.model import Profile
from deid.released import DB_NAME as RELEASED_DB
from deid.released import ReleasedIndex
from deid.run.attempt import RUN_DEATHS, Working
from deid.run.folders import check_paths, locked, told_what_to_do
from deid.run.journal import Journal, journal_stamp, skipped_outcome, source_ref
from deid.run.memory import long_lived_frozen, reuse_freed_buffers
from deid.run.paths import RunPaths
from deid.run.pool import Pool
from deid.run.progress import progress_bar
from deid.run.quarantine import (
    QuarantineBook,
    quarantine_entries,
    quarantined_originals,
    source_names,
)
from deid.run.release import check_release, remove_stale
from deid.run.summary import RunSummary, new_summary, write_summary
from deid.run.workers import (
    PipelineSetup,
    _init_pipeline,
    _init_worker,
    _stage,
    _work,
    local_pipeline,
)
from deid.settlement import Batch
from deid.staging import Done, Placer

BATCH = 64  # outputs made durable together with one sync, then journalled


def run(sources: list[Path], paths: RunPaths, profile: Profile, key: SecretKey, *, workers: int = 1,
        lookup: Mapping[str, str] | None = None, progress: bool | None = None,
        follow_links: bool = False, max_object_bytes: int | None = None, debug: bool = False,
        cluster: str | None = None, from_quarantine: bool = False,
        reprocess: bool = False) -> RunSummary:
    """De-identify every file under ``sources``; returns the summary (also written to the records).

    ``follow_links``: follow links that leave the source folders (refused by default);
    ``max_object_bytes``: larger files are quarantined ``too-large`` unread (default: the
    profile's);
    ``debug``: the traceback of an internal error also goes to RECORDS/debug/ (never to the log);
    ``cluster``: a Dask scheduler address or local:N, whose workers do the work (deid.cluster);
    ``from_quarantine``: the input is the originals in ``paths.quarantine`` (``sources`` empty);
    ``reprocess``: the profile differs from the output's: release every source again with it.
    An empty input writes nothing (the summary's ``total`` is 0)."""
    started = time.monotonic()
    check_paths(sources, paths)
    max_bytes = max_object_bytes or profile.max_object_bytes
    found: Found | Discovery
    if from_quarantine:
        found, names = quarantined_originals(paths.quarantine)
    else:
        found = Discovery(sources, follow_links=follow_links)  # walked as the run goes
        names = source_names(sources)
    if found.is_empty():
        summary = new_summary(paths, profile, key, max_bytes, from_quarantine=from_quarantine)
        for _ in found:  # no file: the walk only counts what it skipped
            pass
        summary.skipped_entries = dict(sorted(found.skipped.items()))
        summary.quarantine_waiting = summary.quarantine_earlier = len(
            quarantine_entries(paths.quarantine))
        return summary
    with told_what_to_do(paths):
        paths.out.mkdir(parents=True, exist_ok=True)
        make_private_dir(paths.quarantine)
        make_private_dir(paths.records)
        with locked(paths):
            check_release(paths, profile, key, reprocess=reprocess, from_quarantine=from_quarantine)
            summary = _run(found, paths, profile, key, workers=workers, lookup=lookup,
                           progress=progress, max_bytes=max_bytes, started=started, debug=debug,
                           names=names, from_quarantine=from_quarantine, cluster=cluster)
            fsync_dir(paths.quarantine)
            return summary


def _run(found: Found | Discovery, paths: RunPaths, profile: Profile, key: SecretKey, *,
         workers: int, lookup: Mapping[str, str] | None, progress: bool | None, max_bytes: int,
         started: float, debug: bool, names: Callable[[Path], str], from_quarantine: bool,
         cluster: str | None = None) -> RunSummary:
    """The run itself, with the folders made and locked."""
    log = logs.get_logger("deid.run")
    reuse_freed_buffers()  # each object's buffers serve the next (this process and its workers)
    remove_run_temps(paths.out)  # we hold the output's lock: these are left by killed runs
    summary = new_summary(paths, profile, key, max_bytes, from_quarantine=from_quarantine)
    set_temp_owner(summary.run_id)
    log.info("run started", run_id=summary.run_id, workers=workers, profile=profile.name)
    trail = AuditTrail(paths.records, key=key, profile=profile, run_id=summary.run_id, source="run")
    summary.audit = str(trail.path)
    journal = Journal(paths.records, trail, journal_stamp(profile, key), synced=[paths.out])
    settled = Batch(journal, BATCH)  # record -> one sync per batch -> journal (deid.settlement)
    # released UIDs of every run with these records (the batch sync makes its lines durable too)
    released = ReleasedIndex(paths.records / RELEASED_DB, durable=False)
    stale = remove_stale(journal, paths.out, released)
    book = QuarantineBook(paths.quarantine, journal.done, stale)
    setup = PipelineSetup(profile, key, paths.out, paths.quarantine, lookup, summary.run_id,
                          max_bytes, paths.records if debug else None, released)
    shown_once = logs.FirstOfEach()  # the first quarantined object of each reason is logged

    def todo() -> Iterator[tuple[str, str, str]]:
        """The sources still to do, as the walk finds them (done ones skipped here)."""
        for source in found:
            ref = source_ref(key, source)
            if from_quarantine:
                book.came_from(ref, source.path)
            if journal.is_done(ref, paths):
                summary.skipped += 1
                trail.record(skipped_outcome(journal.done[ref]))
                book.done_before(ref)
                bar.update(1)  # the bar counts every file found, done before or now
                continue
            yield ref, str(source.path), names(source.path)

    show_bar = sys.stderr.isatty() if progress is None else progress
    bar = progress_bar(show_bar, found.files_now)
    logs.show_above(bar)  # log lines go above the bar, never through it
    done = _outcomes(todo(), setup, workers, cluster, paths.records)
    try:
        for ref, outcome in done:
            settled.settle(ref, outcome)
            book.note(ref, outcome)
            summary.count(outcome)
            if isinstance(outcome, Quarantined) and shown_once.first(outcome.code):
                log.warning("quarantined", code=outcome.code, stage=outcome.stage or None,
                            path=outcome.path or None,
                            quarantine=outcome.entry)  # the entry is named, never the source
            bar.update(1)
            bar.set_postfix(quarantined=summary.quarantined, refresh=False)
    except BaseException:  # stopped (a full disk, ^C): stop the workers, then what they were writing
        done.close()  # the pool is terminated here, not when the traceback is freed
        remove_run_temps(paths.out)  # we still hold the output's lock: every temp is a dead writer's
        raise
    finally:
        bar.close()
        logs.show_above(None)
        summary.ended(found.skipped, time.monotonic() - started)
        for kind, count in summary.skipped_entries.items():  # counts only: a name may hold identity
            log.warning("input entries skipped", code=kind, count=count)
        summary.deny_list_entries = len(profile.deny_list)
        journalled: list[bool] = []

        def close_journal() -> None:
            journal.close()
            journalled.append(True)

        def settle() -> None:  # once the journal holds the releases: the quarantine after them
            if journalled:
                summary.left_quarantine = book.settle()
            waiting = {entry.name for entry in quarantine_entries(paths.quarantine)}
            summary.quarantine_waiting = len(waiting)
            summary.quarantine_earlier = len(waiting - book.made)
            summary.removed = len(stale - book.outputs)

        # each step even when one fails (a full disk): the first error is raised
        _each(settled.close, close_journal, trail.close, released.close, settle,
              lambda: write_summary(paths.records, summary))
    for code, count in shown_once.held_back().items():
        log.warning("more quarantined (not logged one by one)", code=code, count=count)
    log.info("run finished", run_id=summary.run_id, written=summary.written,
             skipped=summary.skipped, quarantined=summary.quarantined, seconds=summary.seconds)
    return summary


def _outcomes(todo: Iterator[tuple[str, str, str]], setup: PipelineSetup, workers: int,
              cluster: str | None, records: Path) -> Iterator[tuple[str, Outcome]]:
    """(ref, outcome) of each source ``todo`` gives: done in this process, by ``workers`` forked
    processes, or on the Dask ``cluster`` (in order, written ones in place)."""
    if cluster is not None:
        from deid.cluster.client import outcomes_on_cluster

        # the cluster sizes its tasks from the whole list (a list of the files still to do)
        yield from outcomes_on_cluster(
            cluster, list(todo), profile=setup.profile, key=setup.key, out=setup.out,
            quarantine=setup.quarantine, lookup=setup.lookup, run_id=setup.run_id,
            max_object_bytes=setup.max_object_bytes, debug=setup.debug, released=setup.released)
        return
    first = list(islice(todo, 2))  # one source: no worker to start
    quarantining: list[Pipeline] = []

    def crashed(item: tuple[str, str, str], deaths: int, who: str = "a worker process") -> Done:
        """An object processes kept dying on (a crash in a decoder): quarantined here."""
        ref, path, name = item
        if not quarantining:
            quarantining.append(local_pipeline(setup))
        error = ObjectError(
            "worker-crashed", f"{who} died {deaths} times on this object; report it to the deid "
            "maintainers with the quarantined file", stage="rules")
        return Done(ref, path, name, quarantining[0].quarantine_file(Path(path), error, name))

    if workers <= 1 or len(first) < 2:
        _init_pipeline(setup)
        working = Working(records)  # which object this process is on, should it die of it
        try:
            with long_lived_frozen():
                for item in chain(first, todo):
                    deaths = working.deaths(item[0])
                    if deaths >= RUN_DEATHS:
                        yield item[0], crashed(item, deaths, "the run's process").outcome
                        continue
                    working.begin(item[0])
                    yield _work(item)
        finally:
            working.end()
        return
    # load the standard's tables once here, so forked workers inherit them instead of each parsing
    from deid import standard

    standard.required_level("1.2.840.10008.5.1.4.1.1.2", (), 0x00100010)
    standard.row_for_tag(0x00100010)
    with long_lived_frozen():  # what workers inherit: never walked by their collectors, nor copied
        pool = Pool(workers, _init_worker, (setup,), _stage, crashed=crashed)
    # workers stage what they release; here, in input order, each is claimed and put in place
    # (deid.staging): which of two contents under one SOP Instance UID goes out is decided by the
    # input's order, as with one worker, never by which worker finished first
    placer = Placer(setup.out, setup.released, lambda: local_pipeline(setup))
    with pool:
        for done in pool.map(chain(first, todo)):
            yield done.ref, placer.place(done)
    placer.tidy()


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
