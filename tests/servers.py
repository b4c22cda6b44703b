"""Peer servers the tests start and stop themselves: free ports, readiness, DCMTK storescp.

DCMTK 3.6.7's storescp has no option to choose its listening address: it listens on every
interface, on a free port, only while its test runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from peers import require_tool


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; fail if ``process``
    exits or the port stays closed for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` (SIGTERM, then SIGKILL after 10 s) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class StoreSCP:
    """DCMTK ``storescp`` as a destination: AE title ``aet``, received files in ``folder``.

    Use as a context manager; ``options`` go to storescp before the port (e.g. ``"-td", "2"``,
    ``"+xi"``, TLS options). ``TCP_NODELAY=1`` is set (Debian's DCMTK waits ~50 ms per file
    without it).
    """

    def __init__(self, folder: Path, *options: str, aet: str = "DEST", port: int = 0) -> None:
        self.folder = folder
        self.options = options
        self.aet = aet
        self.port = port  # 0: a free one at each start
        self.log = folder.parent / f"{folder.name}-storescp.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> StoreSCP:
        tool = require_tool("/usr/bin/storescp")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [tool, "--aetitle", self.aet, "--output-directory", str(self.folder),
                 *self.options, str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TCP_NODELAY": "1"},
                start_new_session=True,  # its own process group: with --fork, the children stop too
            )
        wait_for_port(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
            stop(self.process)
            self.process = None

    def associations(self) -> int:
        """How many associations storescp has accepted so far (needs its ``-v`` option)."""
        return self.log.read_text(errors="replace").count("Association Acknowledged")

    def received(self) -> list[Path]:
        """The files storescp has written so far (complete ones: no temp names)."""
        return sorted(p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def __enter__(self) -> StoreSCP:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
