"""``deid run --cluster ADDRESS``: a run's objects de-identified by the workers of a Dask cluster,
released and recorded by this process as a local run releases and records them.

ADDRESS is a Dask scheduler (``tcp://HOST:8786``, ``tls://...``, or a scheduler file ``*.json``),
or ``local:N`` for a ``LocalCluster`` of N single-threaded processes on this machine.

- Tasks are batches of consecutive input files (at most :data:`FILES_PER_TASK`); a task's files
  and its outcomes travel sealed (deid.cluster.envelope); task keys are HMACs (``deid-batch-...``).
- The secret key, profile and lookup reach each worker once, in memory, in a worker plugin named
  by an HMAC of the output folder (removed at the end of the run; the same output's next run
  replaces it if this one was killed).
- Workers stage released bytes beside their place; this process takes the batches' outcomes in
  input order, claims each UID and renames each staged file into place (deid.staging),
  and the caller records the audit line and journal entry as for a local run.  So the output,
  quarantine, audit lines and summary are those of a local ``--workers 1`` run, whatever the
  number of workers, the order they finish in, or a worker lost (Dask runs its tasks again: a
  task's outputs are overwritten, its outcomes recorded once, here).
- A task every worker given it died on (Dask's allowed failures: ``KilledWorker``) is done again
  file by file; a file killed beside other tasks (Dask counts a death against every task the
  worker held) is tried again with nothing else running; a file killed alone is quarantined
  ``worker-crashed`` here and the run goes on; tasks dying again and again with no answer between
  stop the run (exit 2).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import CancelledError
from contextlib import contextmanager
from pathlib import Path

from deid import logs
from deid.cluster import LOCAL, check_address
from deid.errors import ObjectError, UsageError
from deid.keys import SecretKey
from deid.outcome import Outcome
from deid.pipeline import Pipeline
from deid.profile.model import Profile
from deid.released import ReleasedIndex

try:
    from distributed import Client, Future, LocalCluster, as_completed
    from distributed.scheduler import KilledWorker

    from deid.cluster.envelope import seal, unseal
    from deid.staging import Placer
    from deid.cluster.worker import (
        BatchResult,
        Done,
        RunOnWorker,
        RunSettings,
        code_fingerprint,
        deidentify_batch,
        what_this_worker_sees,
    )
except ImportError as exc:  # the cluster extra is not installed
    raise UsageError("--cluster needs Dask: pip install 'deid-pacs[cluster]'") from exc

FILES_PER_TASK = 32  # at most; fewer when there are few files for the workers' threads
WORKER_WAIT = 60.0  # seconds to wait for a first worker to join the scheduler
THREADS_SECONDS = 5.0  # how often the cluster's size is asked again
WAITING = 8  # done batches held for an earlier one, per batch the workers may have running
KILLED_IN_A_ROW = 4  # tasks every worker died on, with no answer between: the workers, not a file


def outcomes_on_cluster(address: str, todo: list[tuple[str, str, str]], *, profile: Profile, key: SecretKey,
                        out: Path, quarantine: Path, lookup: Mapping[str, str] | None, run_id: str,
                        max_object_bytes: int, debug: Path | None,
                        released: ReleasedIndex) -> Iterator[tuple[str, Outcome]]:
    """(journal key, outcome) of each of ``todo``'s (journal key, source path, name), in ``todo``'s order,
    each written one already in place under ``out``; the caller records them."""
    settings = RunSettings(profile, key, lookup, out, quarantine, debug, run_id, max_object_bytes,
                           code_fingerprint())
    with connect(address) as client:
        yield from ClusterRun(client, settings, released).outcomes(todo)


@contextmanager
def connect(address: str) -> Iterator[Client]:
    """A client of the scheduler at ``address``, or of a new ``LocalCluster`` for ``local:N``."""
    check_address(address)
    match = LOCAL.match(address)
    if match:
        with LocalCluster(n_workers=int(match.group(1)), threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster, set_as_default=False) as client:
            yield client
        return
    try:
        if address.endswith(".json"):
            client = Client(scheduler_file=address, set_as_default=False)
        else:
            client = Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address} ({exc.__class__.__name__}): start "
                         f"it (dask scheduler) and its workers (dask worker ADDRESS), or check the "
                         "address") from None
    with client:
        yield client


class ClusterRun:
    """One run's tasks on a connected cluster."""

    def __init__(self, client: Client, settings: RunSettings, released: ReleasedIndex) -> None:
        self.client = client
        self.settings = settings
        self.released = released
        # one plugin per output folder: the next run into it replaces one a killed client left
        self.plugin = "deid-run-" + settings.key.hexdigest("dask-plugin", str(settings.out))[:16]
        self.log = logs.get_logger("deid.cluster")
        self._asked, self._known_threads = -THREADS_SECONDS, 1
        self._quarantining: Pipeline | None = None  # for files every worker died on
        self._killed_in_a_row = 0  # tasks every worker died on, with no answer in between

    def outcomes(self, todo: list[tuple[str, str, str]]) -> Iterator[tuple[str, Outcome]]:
        if not todo:
            return
        self.client.register_plugin(RunOnWorker.of(self.plugin, self.settings), name=self.plugin)
        try:
            self._check_workers()
            yield from self._batches(todo)
        finally:
            try:
                self.client.unregister_worker_plugin(self.plugin)  # the key leaves the workers
            except Exception:  # noqa: BLE001 - a scheduler gone: it took the plugin with it
                self.log.warning("the run's settings could not be removed from the cluster",
                                 run_id=self.settings.run_id)

    def _check_workers(self) -> None:
        """Wait for a worker; refuse workers that run other code or do not see the folders."""
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            raise UsageError(f"no Dask worker joined the scheduler in {WORKER_WAIT:.0f}s: start workers "
                             "(dask worker ADDRESS --nthreads 1), then run the same command again") from None
        s = self.settings
        seen = self.client.run(what_this_worker_sees, str(s.out), str(s.quarantine), str(s.debug or ""))
        for worker, (code, sees) in sorted(seen.items()):
            self._refuse(worker, "other-code" if code != self.settings.code else "" if sees else
                         "no-shared-folders")

    def _refuse(self, worker: str, why: str) -> None:
        s = self.settings
        if why == "other-code":
            raise UsageError(f"the Dask worker {worker} runs another deid than this one: install the same "
                             "deid-pacs on the client, the scheduler and every worker")
        if why:
            also = f" or the records {s.debug} (--debug)" if s.debug else ""
            raise UsageError(f"the Dask worker {worker} does not see the output folder {s.out} or the "
                             f"quarantine {s.quarantine}{also}: every worker must see them at the same "
                             "path (shared storage, see the README)")

    def _batches(self, todo: list[tuple[str, str, str]]) -> Iterator[tuple[str, Outcome]]:
        """Submit batches (a few per worker thread ahead), and yield their outcomes in input order."""
        s = self.settings
        size = max(1, min(FILES_PER_TASK, math.ceil(len(todo) / (4 * self._threads()))))
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        # future -> (batch number, the file's place in it when the batch is done file by file)
        running: dict[Future, tuple[int, int | None]] = {}
        finished: dict[int, BatchResult] = {}
        parts: dict[int, list[BatchResult | None]] = {}  # batches done file by file
        queue = as_completed(loop=self.client.loop)
        submitted = placed = 0
        unplaced: deque[Done] = deque()  # of the batch being placed

        singles: deque[tuple[int, int]] = deque()  # files of split batches, to send one by one
        suspects: deque[tuple[int, int | None]] = deque()  # files killed beside others: tried alone
        alone: list[tuple[int, int | None]] = []  # the suspect running with nothing beside it

        def send(index: int, part: int | None) -> None:
            files = batches[index] if part is None else [batches[index][part]]
            task = "deid-batch-" + s.key.hexdigest("dask-task", s.run_id + "".join(item[0] for item in files))[:20]
            future = self.client.submit(deidentify_batch, self.plugin, seal(s.key, s.run_id, files),
                                        key=task, retries=0)
            running[future] = (index, part)
            queue.add(future)

        def submit() -> None:
            nonlocal submitted
            if suspects or alone:  # Dask blames every task a dying worker held: one runs alone
                if not running and not alone:
                    alone.append(suspects.popleft())
                    send(*alone[0])
                return
            ahead = 2 * self._threads() + 2
            while singles and len(running) < ahead:
                send(*singles.popleft())
            # done batches wait here for an earlier one: a slow batch holds back at most this many
            while submitted < len(batches) and len(running) < ahead and len(finished) < WAITING * ahead:
                send(submitted, None)
                submitted += 1

        def killed(index: int, part: int | None) -> None:
            """Every worker given this task died (Dask's allowed failures): a batch is done again
            file by file; a file killed beside other tasks is tried again alone, once nothing else
            runs; a file killed alone is quarantined here (a crash in a decoder, memory)."""
            files = batches[index]
            if part is None and len(files) > 1:
                self.log.warning("Dask workers died on a task: its files are done again one by one",
                                 count=len(files), run_id=s.run_id)
                parts[index] = [None] * len(files)
                singles.extend((index, place) for place in range(len(files)))
                return
            if alone != [(index, part)]:
                suspects.append((index, part))
                return
            alone.clear()
            self.log.warning("Dask workers died on a file given alone: quarantined",
                             code="worker-crashed", run_id=s.run_id)
            result = BatchResult(done=[self._crashed(files[part or 0])])
            if part is None:
                finished[index] = result
            else:
                took(index, part, result)

        def took(index: int, part: int, result: BatchResult) -> None:
            got = parts[index]
            got[part] = result
            if all(r is not None for r in got):
                whole = [r for r in got if r is not None]
                first = next((r for r in whole if r.refused or r.error is not None), whole[0])
                done = [d for r in whole for d in r.done] if first.error is None else \
                    [d for r in whole[:whole.index(first) + 1] for d in r.done]
                finished[index] = BatchResult(first.worker, done, first.error, first.refused)
                del parts[index]

        placer = Placer(s.out, self.released, self._local_pipeline)
        submit()
        try:
            for future in queue:
                index, part = running.pop(future)
                result = self._result(future)
                future.release()
                if result is None:
                    killed(index, part)
                else:
                    if alone == [(index, part)]:
                        alone.clear()  # it was not that file's doing
                    if part is None:
                        finished[index] = result
                    else:
                        took(index, part, result)
                submit()
                while placed in finished:
                    result = finished.pop(placed)
                    unplaced = deque(result.done)
                    self._refuse(result.worker, result.refused)
                    if result.error is None and len(result.done) != len(batches[placed]):
                        raise RuntimeError("cluster run: a batch answered for fewer files than it holds")
                    placed += 1
                    while unplaced:
                        done = unplaced.popleft()
                        yield done.ref, placer.place(done)
                    if result.error is not None:
                        number, text, filename = result.error
                        raise OSError(number, text, filename)
                submit()  # (if the done batches waiting had stopped it)
            if placed != len(batches):  # never a run that ends with objects not done
                raise RuntimeError(f"cluster run: {len(batches) - placed} batches got no answer")
        finally:  # stopped by an error: what was staged and not placed goes
            if running:
                self.client.cancel(list(running))
            placer.drop(unplaced)
            for result in finished.values():
                placer.drop(result.done)
            placer.tidy()
            if placer.done_again:
                self.log.info("objects done again on the client (other content under their UID or place)",
                              count=placer.done_again, run_id=s.run_id)

    def _result(self, future: Future) -> BatchResult | None:
        """A task's answer; None when every worker given it died (Dask's KilledWorker)."""
        try:
            sealed = future.result()
        except KilledWorker:
            self._killed_in_a_row += 1
            if self._killed_in_a_row > KILLED_IN_A_ROW:  # not one object's doing: the workers'
                raise UsageError(
                    "tasks of this run were tried on several Dask workers and each of them died "
                    "(out of memory?): check the workers' memory and logs, then run the same command "
                    "again: it keeps what is done and completes the rest") from None
            return None
        except CancelledError:
            raise UsageError("the Dask scheduler was lost (or cancelled this run's tasks): check that it "
                             "runs, then run the same command again: it keeps what is done and completes "
                             "the rest") from None
        self._killed_in_a_row = 0
        return unseal(self.settings.key, self.settings.run_id, sealed)

    def _threads(self) -> int:
        """The cluster's worker threads (asked again every few seconds: workers come and go)."""
        now = time.monotonic()
        if now - self._asked > THREADS_SECONDS:
            self._asked, self._known_threads = now, max(1, sum(self.client.nthreads().values()))
        return self._known_threads

    def _crashed(self, item: tuple[str, str, str]) -> Done:
        """A file every Dask worker given it alone died on: quarantined here, the run goes on."""
        ref, path, name = item
        if self._quarantining is None:
            self._quarantining = self._local_pipeline()
        error = ObjectError(
            "worker-crashed", "every Dask worker given this object alone died on it; report it to "
            "the deid maintainers with the quarantined file", stage="rules")
        return Done(ref, path, name, self._quarantining.quarantine_file(Path(path), error, name))

    def _local_pipeline(self) -> Pipeline:
        """The pipeline this process uses for an object to do again (with the released index)."""
        s = self.settings
        return Pipeline(s.profile, s.key, out=s.out, quarantine=s.quarantine, lookup=s.lookup, durable=False,
                        max_object_bytes=s.max_object_bytes, debug=s.debug, released=self.released)
