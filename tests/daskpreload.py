"""A Dask preload for the cluster tests (``dask scheduler|worker --preload tests/daskpreload.py``).

On the scheduler, with ``DEID_TEST_TASKS=FILE``: each task's key, the repr Dask logs of it (a
failed task's "Compute Failed" line) and the repr of its arguments are appended to FILE, so a test
can read what the scheduler holds.  On a worker, with ``DEID_TEST_SLOW=SECONDS``: the worker waits that long after
each file of a batch, and once it has staged a file of a batch it touches ``DEID_TEST_BUSY``:
a slow worker, caught in the middle of a batch, for a test to kill.  With ``DEID_TEST_POISON=NAME``:
the worker process kills itself on a batch holding the file NAME (as a crash in a decoder would).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from distributed import Scheduler, Worker
from distributed.diagnostics.plugin import SchedulerPlugin


class TaskSpy(SchedulerPlugin):
    def __init__(self, path: Path) -> None:
        self.path = path

    def update_graph(self, scheduler: Scheduler, *, keys: set, **kwargs: object) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            for key in keys:
                task = scheduler.tasks.get(key)
                spec = task.run_spec if task is not None else None
                handle.write(f"{key}\t{spec!r}\t{getattr(spec, 'args', None)!r}\n")


def _slow_down(seconds: float, busy: Path) -> None:
    from deid.cluster import worker

    deidentify = worker.RunOnWorker._deidentify

    def slowly(self: worker.RunOnWorker, files: list, result: worker.BatchResult) -> None:
        for item in files:
            deidentify(self, [item], result)
            if result.error is not None or len(result.done) == 0:
                return
            busy.touch()
            time.sleep(seconds)

    worker.RunOnWorker._deidentify = slowly  # type: ignore[method-assign]


def _die_on(poison: str) -> None:
    """The worker process kills itself (SIGKILL, as a crash in a C decoder would) when a batch
    holds the file named ``poison``."""
    import signal

    from deid.cluster import worker

    deidentify = worker.RunOnWorker._deidentify

    def dying(self: worker.RunOnWorker, files: list, result: worker.BatchResult) -> None:
        if any(Path(path).name == poison for _ref, path, _name in files):
            os.kill(os.getpid(), signal.SIGKILL)
        deidentify(self, files, result)

    worker.RunOnWorker._deidentify = dying  # type: ignore[method-assign]


def dask_setup(server: Scheduler | Worker) -> None:
    if isinstance(server, Scheduler) and os.environ.get("DEID_TEST_TASKS"):
        server.add_plugin(TaskSpy(Path(os.environ["DEID_TEST_TASKS"])))
    if isinstance(server, Worker) and os.environ.get("DEID_TEST_POISON"):
        _die_on(os.environ["DEID_TEST_POISON"])
    if isinstance(server, Worker) and os.environ.get("DEID_TEST_SLOW"):
        _slow_down(float(os.environ["DEID_TEST_SLOW"]), Path(os.environ["DEID_TEST_BUSY"]))
