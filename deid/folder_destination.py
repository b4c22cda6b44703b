"""An output folder as a destination: released objects (bytes in memory) written where `deid run`
writes them, ``<PatientID>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm`` under the folder, named by their
released values only (deid.io.paths).

A write is atomic and durable (temp file, fsync, rename, folder fsync: deid.io.writer) before
the send answers done, so the spool lets the original go only once the released object is on
disk.  The folder's own refusals (full, read-only, failing) are a retry: the original waits in
the spool.  Another object already released under the same name is never overwritten: that send
fails, and the worker quarantines the object (``forward-rejected``).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from pydicom import dcmread

from deid.forward import DONE, FAILED, RETRY, SendResult
from deid.io.paths import output_path
from deid.io.reader import peek_text
from deid.io.writer import write_bytes_atomic
from deid.settings import FOLDER_DESTINATION

#: the released values a path is made of, in output_path's order
_PATH_TAGS = (0x00100020, 0x0020000D, 0x0020000E, 0x00080018)


@dataclass(frozen=True)
class FolderDestination:
    """The forwarder's view of an output folder destination: where the folder is."""

    path: Path

    def __str__(self) -> str:
        return FOLDER_DESTINATION  # its name in the spool, the records and the metrics


def folder_destination(setting: Any) -> FolderDestination:
    """The forwarder's view of a configured folder destination (deid.settings)."""
    return FolderDestination(setting.path)


def released_path(folder: Path, data: bytes) -> Path:
    """Where a released Part 10 object goes under ``folder``: the path `deid run` gives it
    (deid.pipeline), from the object's own released identifiers."""
    ds = dcmread(BytesIO(data), stop_before_pixels=True, specific_tags=list(_PATH_TAGS))
    return output_path(folder, *(peek_text(ds, tag) for tag in _PATH_TAGS))


class FolderForwarder:
    """Writes released objects into output folders; nothing is held between sends (made by
    deid.sender.forwarder_for as the other forwarders are: ``send_bytes``, ``close``)."""

    def __init__(self, destinations: Any = (), *, timeout: float = 30) -> None:
        """``destinations`` and ``timeout``: as the other forwarders take them; a write has no
        timeout of its own."""

    def send_bytes(self, destination: FolderDestination, data: bytes) -> SendResult:
        """Write ``data`` at its place under the folder: done once it is whole on disk; a retry
        when the folder refuses the write; failed when the object cannot be named or another
        object already has its name."""
        try:
            target = released_path(destination.path, data)
        except Exception:  # noqa: BLE001  (released bytes deid made: never expected)
            return SendResult(FAILED, None, "object is not a readable DICOM Part 10 object")
        try:
            if target.is_file() and target.read_bytes() != data:
                return SendResult(FAILED, None, "the output folder already holds another object "
                                  "under this object's name")
            write_bytes_atomic(data, target)
        except OSError as exc:
            return SendResult(RETRY, None, f"the output folder refused the write ({_why(exc)})")
        return SendResult(DONE, 0x0000, "")

    def close(self) -> None:
        """Nothing held."""

    def __enter__(self) -> FolderForwarder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _why(exc: OSError) -> str:
    """The error's code (``ENOSPC``), never its message: that names the path."""
    return errno.errorcode.get(exc.errno or 0, exc.__class__.__name__)
