"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1,
on free ports, with their logs in files; each stops itself (and can be killed like a lost machine).

The ``dask`` command is the one installed beside this interpreter (the test extra); without it a
test skips, or fails when ``CI=true``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from peers import require_tool
from servers import free_port, wait_for_port

PRELOAD = Path(__file__).with_name("daskpreload.py")


def require_distributed() -> None:
    """Skip the calling test module without Dask's distributed (the test extra), or fail it in CI."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("dask[distributed] is not installed (the test extra)")
        pytest.skip("dask[distributed] is not installed", allow_module_level=True)


def dask_command() -> str:
    """The ``dask`` command of this interpreter's environment."""
    beside = Path(sys.executable).with_name("dask")
    return str(beside) if beside.is_file() else require_tool("dask")


class DaskProcess:
    """A ``dask`` server process in its own session (so its nanny and worker die together)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        environment = {**os.environ, **(env or {})}
        with open(log, "wb") as handle:
            self.process = subprocess.Popen([dask_command(), *args], stdout=handle, stderr=subprocess.STDOUT,
                                            env=environment, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the whole process group: a machine lost, no goodbye to the scheduler.  All
        but Python's resource tracker, which then removes the named semaphores the nanny and its
        worker made in /dev/shm (killed with them, it left them there for good) and exits."""
        if self.process.poll() is None:
            trackers = [pid for pid in _group(self.process.pid) if _is_resource_tracker(pid)]
            for pid in _group(self.process.pid):
                if pid not in trackers:
                    _signal(pid, signal.SIGKILL)
            self.process.wait()
            deadline = time.monotonic() + 10
            while any(_alive(pid) for pid in trackers) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in trackers:
                _signal(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Scheduler(DaskProcess):
    """``dask scheduler`` on 127.0.0.1 (dashboard on a free port)."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        super().__init__(["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--dashboard-address",
                          f"127.0.0.1:{free_port()}", "--preload", str(PRELOAD)], folder / "scheduler.log", env)
        try:
            wait_for_port(self.port, self.process, timeout=60)
        except BaseException:
            self.stop()
            raise


class Worker(DaskProcess):
    """``dask worker ADDRESS --nworkers 1 --nthreads 1`` on 127.0.0.1 (started; see wait_registered)."""

    def __init__(self, scheduler: Scheduler, log: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(["worker", scheduler.address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
                          "--no-dashboard", "--preload", str(PRELOAD)], log, env)

    def wait_registered(self) -> Worker:
        """Return once the scheduler has this worker (fail after a minute)."""
        deadline = time.monotonic() + 60
        while "Registered to:" not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dask worker did not register with the scheduler:\n{self.text()[-2000:]}")
            time.sleep(0.1)
        return self


def _group(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[2]) == pgid:  # (state, ppid, pgrp, ...)
                found.append(int(entry))
    return found


def _is_resource_tracker(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
