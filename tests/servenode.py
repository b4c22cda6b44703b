"""Helpers for forwarding-node tests: the node as a subprocess, DCMTK storescp/storescu/echoscu as
real peers, all on 127.0.0.1 and free ports, stopped by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from peers import require_tool
from servers import StoreSCP, free_port

SENDER = "SENDER"
NODE = "DEID"
DEST = "DEST"


def dcmtk_env() -> dict[str, str]:
    """DCMTK needs TCP_NODELAY=1, or Debian's build waits ~50 ms per object."""
    return {**os.environ, "TCP_NODELAY": "1"}


def wait_until(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def node_processes(node_pid: int, name: str) -> list[int]:
    """The node's child processes that named themselves ``name`` once started (``deid-worker``,
    ``deid-sender``: deid.service, deid.sender; not its resource tracker), by their parent."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            named = (entry / "comm").read_text().strip() == name
        except (OSError, IndexError, ValueError):
            continue  # (gone meanwhile)
        if parent == node_pid and named:
            found.append(int(entry.name))
    return sorted(found)


class Storescp(StoreSCP):
    """DCMTK storescp forking one process per association (as a PACS takes several at once),
    AE title DEST; files are named by SOP Instance UID, so a second copy of an instance
    overwrites the first."""

    def __init__(self, folder: Path, port: int | None = None, *extra: str) -> None:
        super().__init__(folder, "--fork", *extra, aet=DEST, port=port or free_port())

    def instances(self) -> list[Path]:
        return self.received()


class Node:
    """`deid serve` in a subprocess (``python -m deid serve``), as an operator starts it."""

    def __init__(
        self,
        data: Path,
        key_file: Path,
        destinations: Iterable[str],
        *extra: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        workers: int = 2,
    ) -> None:
        self.data = data
        self.port = port or free_port()
        self.args = [
            "serve",
            "--aet",
            NODE,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--allow-aet",
            SENDER,
            "--profile",
            "vghtpe",
            "--key-file",
            str(key_file),
            "--data",
            str(data),
            "--workers",
            str(workers),
        ]
        for destination in destinations:
            self.args += ["--forward", destination]
        self.args += list(extra)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DEID_")}
        self.env.update({"DEID_SERVE_RETRY_FIRST_DELAY": "0.2", "DEID_SERVE_RETRY_MAX_DELAY": "1"})
        self.env.update(env or {})
        self.process: subprocess.Popen[str] | None = None
        self.log = data.parent / f"{data.name}-serve.log"

    def start(self, *, wait: bool = True) -> Node:
        handle = open(self.log, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deid", *self.args],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
        handle.close()
        if wait:
            wait_until(
                lambda: port_open(self.port) or self.process.poll() is not None,
                30,
                "the node to listen",
            )
            assert self.process.poll() is None, self.log.read_text()[-3000:]
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def status(self) -> dict[str, float]:
        import json

        result = subprocess.run(
            [sys.executable, "-m", "deid", "status", "--data", str(self.data), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return json.loads(result.stdout)

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def storescu(
    port: int,
    files: Iterable[Path],
    *extra: str,
    aet: str = SENDER,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Send files with DCMTK storescu (one association) from ``aet`` to the node."""
    result = _dcmtk("storescu", port, extra, [str(f) for f in files], aet=aet, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def echoscu(port: int, *extra: str, aet: str = SENDER) -> subprocess.CompletedProcess[str]:
    return _dcmtk("echoscu", port, extra, [], aet=aet, timeout=60)


def _dcmtk(tool: str, port: int, options: Iterable[str], files: list[str], *, aet: str,
           timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK SCU from ``aet`` to the node on 127.0.0.1:``port`` (files after the port)."""
    return subprocess.run(
        [require_tool(f"/usr/bin/{tool}"), "-aet", aet, "-aec", NODE, *options, "127.0.0.1", str(port), *files],
        env=dcmtk_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )


def acknowledged(storescu_output: str) -> set[str]:
    """The files a ``storescu -v`` run got a success response for."""
    done: set[str] = set()
    current = None
    for line in storescu_output.splitlines():
        if "Sending file: " in line:
            current = line.split("Sending file: ", 1)[1].strip()
        elif "Received Store Response (Success)" in line and current is not None:
            done.add(current)
            current = None
    return done


def start_storescu(
    port: int, files: Iterable[Path], *extra: str, aet: str = SENDER
) -> subprocess.Popen[str]:
    """storescu -v in the background (read its output with ``communicate``)."""
    return subprocess.Popen(
        [
            require_tool("/usr/bin/storescu"),
            "-v",
            "-aet",
            aet,
            "-aec",
            NODE,
            *extra,
            "127.0.0.1",
            str(port),
            *map(str, files),
        ],
        env=dcmtk_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def spooled(data: Path) -> list[bytes]:
    """The originals waiting in the spool of the data folder ``data``, each as it was put."""
    from deid.spool import waiting_originals
    from deid.spool_slots import read_object

    return [read_object(path, key) if start else path.read_bytes()
            for key, path, start in waiting_originals(data / "spool")]


def start_receiver(tmp_path: Path, *allow: str, min_free_bytes: int = 0,
                   **flags: object) -> tuple[Any, Any]:
    """The node's receiver alone, started in-process on 127.0.0.1 (callers ``stop()`` it), with
    its spool: allowing ``allow`` (default SENDER), flags as ``deid serve`` takes them."""
    from deid.intake.receiver import Receiver
    from deid.settings import load_settings
    from deid.spool import Spool

    settings = load_settings(None, environ={}, flags={
        "host": "127.0.0.1", "port": free_port(), "allow": list(allow or [SENDER]),
        "destinations": ["DEST@127.0.0.1:1"], "key_file": str(tmp_path / "k"),
        "data": str(tmp_path / "data"), **flags,
    })
    spool = Spool(settings.spool, min_free_bytes=min_free_bytes)
    receiver = Receiver(settings, spool)
    receiver.start()
    return receiver, spool
