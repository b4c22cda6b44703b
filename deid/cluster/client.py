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
from deid.errors import UsageError
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
        running: dict[Future, int] = {}
        finished: dict[int, BatchResult] = {}
        queue = as_completed(loop=self.client.loop)
        submitted = placed = 0
        unplaced: deque[Done] = deque()  # of the batch being placed

        def submit() -> None:
            nonlocal submitted
            ahead = 2 * self._threads() + 2
            # done batches wait here for an earlier one: a slow batch holds back at most this many
            while submitted < len(batches) and len(running) < ahead and len(finished) < WAITING * ahead:
                batch = batches[submitted]
                task = "deid-batch-" + s.key.hexdigest("dask-task", s.run_id + "".join(item[0] for item in batch))[:20]
                future = self.client.submit(deidentify_batch, self.plugin, seal(s.key, s.run_id, batch),
                                            key=task, retries=0)
                running[future] = submitted
                queue.add(future)
                submitted += 1

        placer = Placer(s.out, self.released, self._local_pipeline)
        submit()
        try:
            for future in queue:
                index = running.pop(future)
                finished[index] = self._result(future)
                future.release()
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

    def _result(self, future: Future) -> BatchResult:
        try:
            sealed = future.result()
        except KilledWorker:
            raise UsageError("a batch of this run was tried on several Dask workers and each of them died "
                             "(out of memory?): check the workers' memory and logs, then run the same "
                             "command again: it keeps what is done and completes the rest") from None
        except CancelledError:
            raise UsageError("the Dask scheduler was lost (or cancelled this run's tasks): check that it "
                             "runs, then run the same command again: it keeps what is done and completes "
                             "the rest") from None
        return unseal(self.settings.key, self.settings.run_id, sealed)

    def _threads(self) -> int:
        """The cluster's worker threads (asked again every few seconds: workers come and go)."""
        now = time.monotonic()
        if now - self._asked > THREADS_SECONDS:
            self._asked, self._known_threads = now, max(1, sum(self.client.nthreads().values()))
        return self._known_threads

    def _local_pipeline(self) -> Pipeline:
        """The pipeline this process uses for an object to do again (with the released index)."""
        s = self.settings
        return Pipeline(s.profile, s.key, out=s.out, quarantine=s.quarantine, lookup=s.lookup, durable=False,
                        max_object_bytes=s.max_object_bytes, debug=s.debug, released=self.released)
