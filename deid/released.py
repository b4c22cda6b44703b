"""The index of released objects: each released SOP Instance UID (its released form) with the
digest of the bytes released under it (deid.digest) and their output path.  Duplicates are found
by UID over a whole release, wherever in the output tree the other object would land.

One SQLite table (WAL mode) that every process shares: `deid run` keeps it in its records folder,
the node in its own records folder.  A UID is claimed before its object is written or sent, in one
statement on the primary key (INSERT OR IGNORE), so of two contents under one UID only one is ever
released, however many processes race; the same content again matches its own claim and goes out
again (a rerun, a retry).  ``deid run`` claims in one process, in the input's order, whatever
its worker count (deid.staging), so the first in the input is the one released; the node's
workers claim as objects come (which of two racing contents is first depends on timing).  A
claim stays when its write never happened (a killed process, a
destination that refused it): the same content completes later; other content under that UID
waits for a person (``duplicate-instance``).

A durable index (the default) syncs each claim.  Otherwise claims are committed without a sync
(``synchronous=NORMAL``: a power cut may undo the last ones, never reorder them) and made durable
by the caller: ``deid run`` syncs its file systems before it journals a batch, the node's worker
calls :meth:`ReleasedIndex.sync` before it hands an object to a destination (one fsync of the
write-ahead log, outside SQLite's write lock: a synced commit holds the lock through its fsync,
and the other processes' claims wait, sleeping in SQLite's busy handler).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from deid.digest import same_content
from deid.io.database import private_database
from deid.io.writer import fsync_dir

DB_NAME = "released.sqlite"
SETUP_SECONDS = 60.0  # processes opening a new index at once wait for each other this long

_SCHEMA = """
CREATE TABLE IF NOT EXISTS released (
    sop_uid TEXT PRIMARY KEY,  -- released (de-identified) SOP Instance UID
    sha256 TEXT NOT NULL,      -- digest of the released bytes (deid.digest: "blake3:" + hex;
                               -- SHA-256 hex in indexes written before)
    output TEXT NOT NULL       -- released path, relative to the output folder
)
"""


class ReleasedIndexError(OSError):
    """The index cannot be read or written (a full or read-only disk, a damaged file)."""


class ReleasedIndex:
    """One process's handle on the index file (opened lazily, again after a fork)."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable  # False: the caller syncs the disk before it records a batch
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._wal_synced = False  # the write-ahead log's name is durable in its folder

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "durable": self.durable}  # never a connection

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], durable=state["durable"])  # type: ignore[misc]

    def claim(self, sop_uid: str, digest: str, output: str,
              data: Callable[[], bytes | memoryview]) -> bool:
        """Claim ``sop_uid`` for the content whose :func:`deid.digest.content_digest` is
        ``digest`` (``data`` gives its bytes, read only to compare with an older index's SHA-256);
        False when other content holds it.  Raises :class:`ReleasedIndexError` (an OSError) when
        the index cannot be read or written."""
        try:
            conn = self._connection()
            inserted = conn.execute(
                "INSERT OR IGNORE INTO released (sop_uid, sha256, output) VALUES (?, ?, ?)",
                (sop_uid, digest, output),
            ).rowcount
            if inserted == 1:
                return True  # a new claim: the row is this content's
            row = conn.execute(
                "SELECT sha256 FROM released WHERE sop_uid = ?", (sop_uid,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise ReleasedIndexError(f"{self.path.name}: {exc.__class__.__name__}") from exc
        return row is not None and same_content(row[0], digest, data)

    def forget(self, sop_uids: Iterable[str]) -> None:
        """Drop the claims of ``sop_uids``: their outputs were removed (deid run --reprocess
        releases their sources again, with another profile)."""
        try:
            self._connection().executemany("DELETE FROM released WHERE sop_uid = ?",
                                           ((uid,) for uid in sop_uids))
        except sqlite3.Error as exc:
            raise ReleasedIndexError(f"{self.path.name}: {exc.__class__.__name__}") from exc

    def sync(self) -> None:
        """Make this process's claims so far durable, where each is not (``durable=False``): one
        fsync of the write-ahead log, which holds every commit not yet checkpointed (a checkpoint
        syncs what it moves into the database file).  OSError when the disk refuses it."""
        if self.durable or self._conn is None or self._pid != os.getpid():
            return  # nothing claimed by this process since it opened the index
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return  # no log: every commit is in the database file, synced by its checkpoint
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if not self._wal_synced:  # a new log's name in its folder (SQLite: at a checkpoint)
            fsync_dir(self.path.parent)
            self._wal_synced = True

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn, self._pid = self._open(), os.getpid()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        """Connect, in WAL mode, with the table; processes creating it at once take turns.  The
        file is owner-only before the connection, so SQLite makes its -wal and -shm so too."""
        try:
            private_database(self.path)
        except OSError as exc:  # a missing folder, a full or read-only disk
            raise ReleasedIndexError(f"{self.path.name}: {exc.__class__.__name__}") from exc
        conn = sqlite3.connect(self.path, timeout=SETUP_SECONDS, isolation_level=None)
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
        # a claim reads a few pages: a small page cache keeps memory flat as the index grows
        conn.execute("PRAGMA cache_size=-256")  # KiB (SQLite's default: 2,000 KiB)
        deadline = time.monotonic() + SETUP_SECONDS
        while True:
            try:  # switching to WAL needs the file alone: it does not wait for a busy handler
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                # only another process setting up takes turns; a full or failing disk is raised
                # at once (the node's storage wait retries it), never waited out here
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.01)
        return conn
