"""The released SOP Instance UIDs already in one writer's re-identification map, kept on disk.

A writer maps each released object once, however often it is recorded (written, then forwarded
to each destination; the same content twice in one run's input).  A set of the UIDs in memory
grows by ~130 B an object for as long as the writer lives (a run, a node's worker); this one is
SQLite's private temporary database instead: a file in SQLite's temporary folder
(``$SQLITE_TMPDIR``, else ``$TMPDIR``, else ``/var/tmp``), mode 0600, unlinked as soon as it is
opened, gone when closed or when the process ends, kept in a page cache of 256 KiB.  Memory
stays flat in the number of objects; the disk holds ~60 B an object.  It needs no durability: a
writer lives no longer than its process, and the next process writes a map of its own.  It
holds released UIDs only.
"""

from __future__ import annotations

import sqlite3


class MappedUids:
    """One writer's set of mapped UIDs (the caller serializes its calls)."""

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None  # opened at the first UID
        self._failed = False

    def add(self, sop_uid: str) -> bool:
        """Add ``sop_uid``; True when it is new.  True also when the set cannot tell (its file
        cannot be written: a full temporary disk): the map then holds an entry twice, never none."""
        if self._failed:
            return True
        try:
            if self._conn is None:
                self._conn = self._open()
            cursor = self._conn.execute("INSERT OR IGNORE INTO mapped VALUES (?)", (sop_uid,))
            return cursor.rowcount == 1
        except sqlite3.Error:
            self._failed = True  # every later UID is mapped again: the set may have lost some
            self.close()
            return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    @staticmethod
    def _open() -> sqlite3.Connection:
        # "": a private temporary database on disk (":memory:" would keep every page in memory)
        conn = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA cache_size=-256")  # KiB: what stays in memory
        conn.execute("PRAGMA journal_mode=MEMORY")  # a statement's undo: one row
        conn.execute("CREATE TABLE mapped (sop_uid TEXT PRIMARY KEY) WITHOUT ROWID")
        return conn
