"""The durable queue of received objects: files on disk plus one SQLite table (WAL mode,
synchronous=FULL).

Two writes need no sync of their own: a new item's row (its file is durable before the sender
is answered, and :meth:`Spool.recover` queues a file without a row) and a claim (every claim is
released at start-up).  They are committed with synchronous=NORMAL: a power cut may undo them,
never reorder them; the next synced commit (an ack, which must outlive the original's deletion)
makes them durable too, since the write-ahead log is synced in order.

An item is put (file written atomically and made durable, then its row committed), claimed by a
worker under a lease, and ends acknowledged (forwarded everywhere) or quarantined; in between it
may wait for a retry at a set time.  Rows of finished items are kept (for the counts and for
start-up checks) and pruned after a week.  :meth:`Spool.recover` puts everything right after a
crash: claims of dead workers are released, files without a row are queued, rows without a
file are counted as lost, finished items' leftover files are deleted.

When the file system refuses writes (full, read-only, I/O errors) an operation raises
:class:`StorageUnavailable` and changes nothing: an environmental condition that passes, not a
fault of any object.  :func:`storage_status` says, from the file system alone, whether the spool's
disk is below the node's minimum of free space.

Spool file names are random: nothing of the object reaches a path.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.io.database import private_database
from deid.io.writer import fsync_dir

DB_NAME = "queue.sqlite"
FILES = "incoming"
SUFFIX = ".dcm"
KEEP_FINISHED_SECONDS = 7 * 24 * 3600
COUNTERS = ("received", "processed", "forwarded", "quarantined", "retried", "lost")
OPEN_STATES = ("queued", "claimed", "retry")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,          -- spool file name (random; no PHI)
    state TEXT NOT NULL,                -- queued | claimed | retry | done | quarantined | lost
    received REAL NOT NULL,             -- unix time the object was answered success
    attempts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0, -- workers that died holding it (a poison object)
    next_at REAL NOT NULL DEFAULT 0,    -- a retry waits until then
    lease_until REAL,
    worker TEXT,
    sent TEXT NOT NULL DEFAULT '[]',    -- JSON list of destinations that already have it
    reason TEXT,                        -- last reason code (no PHI)
    finished REAL
);
CREATE INDEX IF NOT EXISTS items_state ON items (state, next_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- the node's own settings, for `deid status` (min_free_bytes)
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value);
"""
MIB = 1024 * 1024
# what the file system answers when it refuses writes for now (the same words for errno and SQLite)
DISK_FULL, READ_ONLY, IO_ERROR = "disk full", "read-only", "I/O error"
_ERRNO_KINDS = {
    errno.ENOSPC: DISK_FULL,
    errno.EDQUOT: DISK_FULL,
    errno.EROFS: READ_ONLY,
    errno.EIO: IO_ERROR,
}
_SQLITE_KINDS = {13: DISK_FULL, 8: READ_ONLY, 10: IO_ERROR}  # SQLITE_FULL, _READONLY, _IOERR
_SQLITE_MESSAGES = {
    "database or disk is full": DISK_FULL,
    "attempt to write a readonly database": READ_ONLY,
    "disk i/o error": IO_ERROR,
}


class SpoolError(Exception):
    """The spool cannot take the object (disk full, I/O or database error): out of resources."""


class StorageUnavailable(SpoolError):
    """The file system refuses writes for now (``kind``: disk full, read-only, I/O error).  Nothing
    was changed; the operation may be tried again once space (or the disk) is back."""

    def __init__(self, kind: str, where: str) -> None:
        super().__init__(f"{where}: {kind}")
        self.kind = kind
        self.where = where


def storage_failure(exc: BaseException | None) -> StorageUnavailable | None:
    """The storage condition behind ``exc`` (itself, or what caused it), or None when ``exc`` is
    something else (a bug stays a bug)."""
    for _ in range(8):  # an exception's causes, a short way down
        if exc is None:
            return None
        if isinstance(exc, StorageUnavailable):
            return exc
        if isinstance(exc, OSError) and exc.errno in _ERRNO_KINDS:
            return StorageUnavailable(_ERRNO_KINDS[exc.errno], "data folder")
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            kind = _SQLITE_KINDS.get(code & 0xFF) if isinstance(code, int) else None
            kind = kind or _SQLITE_MESSAGES.get(str(exc).lower())
            if kind:
                return StorageUnavailable(kind, "spool database")
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass(frozen=True)
class StorageStatus:
    """The spool's file system now: free bytes, the node's minimum, and what is wrong (or None)."""

    free_bytes: int
    min_free_bytes: int
    problem: str | None

    def as_stats(self) -> dict[str, Any]:
        """The figures `deid status`, /healthz and /metrics show."""
        return {
            "disk_free_bytes": self.free_bytes,
            "disk_min_free_bytes": self.min_free_bytes,
            "storage_unavailable": 0 if self.problem is None else 1,
            "storage": self.problem or "ok",
        }


def storage_status(folder: Path, min_free_bytes: int) -> StorageStatus:
    """Whether the file system of ``folder`` can take writes: read-only, or less free space than
    ``min_free_bytes`` (none at all counts as full whatever the minimum)."""
    try:
        stats = os.statvfs(folder)
    except OSError as exc:
        problem = f"spool folder not reachable ({exc.__class__.__name__})"
        return StorageStatus(0, min_free_bytes, problem)
    free = stats.f_bavail * stats.f_frsize
    if stats.f_flag & os.ST_RDONLY:
        return StorageStatus(free, min_free_bytes, "spool file system is read-only")
    if free < max(min_free_bytes, 1):
        needs = f", needs {_mib(min_free_bytes)}" if min_free_bytes else ""
        return StorageStatus(free, min_free_bytes, f"spool disk full: {_mib(free)} free{needs}")
    return StorageStatus(free, min_free_bytes, None)


def _mib(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= 10 * MIB or n == 0 else f"{n / MIB:.1f} MiB"


@dataclass(frozen=True)
class Item:
    """A claimed item: its row id, spool file, attempts so far and destinations already done."""

    id: int
    path: Path
    attempts: int
    sent: tuple[str, ...]
    received: float
    crashes: int = 0


def connect(path: Path, *, reader: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=FULL (a commit is on disk when it returns)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    if not reader:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Spool:
    """One process's handle on the spool folder (each process opens its own)."""

    def __init__(self, folder: Path, *, min_free_bytes: int | None = None) -> None:
        """``min_free_bytes``: the node's minimum of free space (put refuses below it), recorded
        for `deid status`; None (a worker's handle): no check, nothing recorded.  Raises
        :class:`StorageUnavailable` when the file system refuses the first writes."""
        self.folder = folder
        self.files = folder / FILES
        self._files = str(self.files)  # (put builds its paths as strings: it runs per object)
        self.min_free_bytes = min_free_bytes or 0
        self.db_path = folder / DB_NAME
        self._lock = threading.Lock()  # the receiver's association threads share this connection
        self._together: _Together | None = None  # releases gathered into one commit (together)
        try:
            for path in (folder, self.files):
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(path, 0o700)  # originals: a PHI zone
            private_database(self.db_path)  # before WAL mode: its -wal and -shm are 0600 too
            self.conn = connect(self.db_path)
            self.conn.executescript(_SCHEMA)  # changes nothing (writes nothing) once it exists
            # for the writes a crash recovery redoes (see the module's docstring)
            self.unsynced = connect(self.db_path)
            self.unsynced.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():
                self.conn.executemany(
                    "INSERT OR IGNORE INTO counters VALUES (?, 0)", [(c,) for c in COUNTERS]
                )
                if min_free_bytes is not None:
                    self.conn.execute(
                        "INSERT INTO settings VALUES ('min_free_bytes', ?) ON CONFLICT (name) "
                        "DO UPDATE SET value = excluded.value WHERE value != excluded.value",
                        (min_free_bytes,),
                    )
        except (OSError, sqlite3.Error) as exc:
            failure = storage_failure(exc)
            if failure is None:
                raise
            raise failure from exc

    def close(self) -> None:
        self.unsynced.close()
        self.conn.close()

    def storage(self) -> StorageStatus:
        """The spool's file system now (free space against this node's minimum)."""
        return storage_status(self.files, self.min_free_bytes)

    # -- intake -----------------------------------------------------------------------------
    def put(self, *parts: bytes | memoryview) -> int:
        """Make the object (``parts``: its bytes, in order) durable in the spool and queue it;
        returns the item id.  Raises :class:`SpoolError` when it cannot (then nothing is queued):
        :class:`StorageUnavailable` when the disk is (nearly) full, read-only or failing.

        The file is written under a temporary name, synced, renamed and its folder synced: a
        crash before the rename leaves a ``.partial`` (never answered success; removed at
        recovery), after it a whole file (queued at recovery if its row is missing)."""
        name = uuid.uuid4().hex + SUFFIX
        folder = self._files
        final, tmp = f"{folder}/{name}", f"{folder}/.{name}.partial"
        size = sum(len(part) for part in parts)
        try:
            if self.min_free_bytes:
                stats = os.statvfs(folder)
                if stats.f_bavail * stats.f_frsize < self.min_free_bytes + size:
                    raise StorageUnavailable(DISK_FULL, "spool (below min_free_mb)")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
            fsync_dir(folder)
        except OSError as exc:
            _unlink(tmp)
            failure = storage_failure(exc)
            if failure is not None:
                raise StorageUnavailable(failure.kind, "spool") from None
            raise SpoolError(f"cannot write to the spool ({exc.__class__.__name__})") from None
        try:
            with self._transaction(synced=False) as conn:  # the file is durable: see above
                cursor = conn.execute(
                    "INSERT INTO items (name, state, received) VALUES (?, 'queued', ?)",
                    (name, time.time()),
                )
                self._count("received", conn=conn)
            return int(cursor.lastrowid or 0)
        except StorageUnavailable:
            _unlink(final)
            raise
        except sqlite3.Error as exc:
            _unlink(final)
            raise SpoolError(
                f"cannot record the object in the queue ({exc.__class__.__name__})"
            ) from None

    # -- workers ----------------------------------------------------------------------------
    def claim(self, worker: str, *, lease: float = 600.0) -> Item | None:
        """The next item due (queued, a retry whose time has come, or an expired lease), now
        leased to ``worker``; ``None`` when nothing is due.  (Every write below raises
        :class:`StorageUnavailable`, changing nothing, when the file system refuses it.)"""
        now = time.time()
        with self._transaction(synced=False) as conn:  # released at start-up anyway
            row = conn.execute(
                "SELECT id, name, attempts, sent, received, crashes FROM items WHERE "
                "(state = 'queued') OR (state = 'retry' AND next_at <= ?) "
                "OR (state = 'claimed' AND lease_until < ?) "
                "ORDER BY next_at, id LIMIT 1",
                (now, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE items SET state = 'claimed', worker = ?, lease_until = ? WHERE id = ?",
                (worker, now + lease, row[0]),
            )
        return Item(row[0], self.files / row[1], row[2], tuple(json.loads(row[3])), row[4], row[5])

    def read(self, item: Item) -> bytes:
        """The original bytes of a claimed item (OSError when its file cannot be read)."""
        return item.path.read_bytes()

    def mark_sent(self, item: Item, destination: str) -> Item:
        """Record that ``destination`` has the object (a retry will not send it there again)."""
        sent = tuple(sorted(set(item.sent) | {destination}))
        with self._transaction():
            self.conn.execute("UPDATE items SET sent = ? WHERE id = ?", (json.dumps(sent), item.id))
        return Item(item.id, item.path, item.attempts, sent, item.received, item.crashes)

    def ack(self, item: Item, *, processed: bool = False) -> None:
        """The object reached every destination: finish the item, then delete its original.
        ``processed``: it was de-identified in this attempt (counted in the same commit)."""
        with self._transaction():
            self._finish(item, "done", None)
            self._count("forwarded")
            if processed:
                self._count("processed")
        self._delete(item.path)

    def quarantine(self, item: Item, reason: str) -> None:
        """The object went to the quarantine (the caller put it there): finish the item."""
        with self._transaction():
            self._finish(item, "quarantined", reason)
            self._count("quarantined")
        self._delete(item.path)

    def retry(
        self,
        item: Item,
        reason: str,
        *,
        first_delay: float,
        max_delay: float,
        processed: bool = False,
    ) -> float:
        """Put the item back to wait (delay doubled per attempt up to ``max_delay``); returns it."""
        delay = min(max_delay, first_delay * (2 ** min(item.attempts, 30)))
        with self._transaction():
            self.conn.execute(
                "UPDATE items SET state = 'retry', attempts = attempts + 1, next_at = ?, "
                "reason = ?, worker = NULL, lease_until = NULL WHERE id = ? AND state = 'claimed'",
                (time.time() + delay, reason, item.id),
            )
            self._count("retried")
            if processed:
                self._count("processed")
        return delay

    def release(self, item: Item) -> None:
        """Give a claimed item back untouched (a worker stopping before it started on it, or one
        whose storage failed under it): no attempt and no crash is counted."""
        with self._transaction():
            self.conn.execute(
                "UPDATE items SET state = 'queued', worker = NULL, lease_until = NULL "
                "WHERE id = ? AND state = 'claimed'",
                (item.id,),
            )

    def release_worker(self, worker: str) -> int:
        """Queue again every item a dead worker held, counting the crash against the one it claimed
        last, the one it was working on (an object that keeps killing workers is quarantined by the
        next one; the others were done, waiting for their batch's commit); returns how many."""
        with self._transaction():
            self.conn.execute(
                "UPDATE items SET crashes = crashes + 1 WHERE id = (SELECT id FROM items WHERE "
                "state = 'claimed' AND worker = ? ORDER BY lease_until DESC, id DESC LIMIT 1)",
                (worker,),
            )
            cursor = self.conn.execute(
                "UPDATE items SET state = 'queued', worker = NULL, lease_until = NULL "
                "WHERE state = 'claimed' AND worker = ?",
                (worker,),
            )
        return cursor.rowcount

    @contextmanager
    def together(self) -> Iterator[None]:
        """Releases (ack, quarantine, retry, mark_sent, release) made inside this block share one
        synced commit, opened at the first of them and committed at the end: one fsync for a
        worker's batch; originals of finished items are deleted after it.  On an error nothing
        is changed (the commit is rolled back).  For one thread (a worker's)."""
        together = self._together = _Together(_Transaction(self.conn, self._lock))
        try:
            with together:
                yield
        finally:
            self._together = None
        for path in together.finished:
            self._delete(path)

    # -- start-up -----------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """Put the spool right after a crash (before any worker starts); returns what was done."""
        done = {"released": 0, "requeued_files": 0, "lost": 0, "removed_files": 0, "pruned": 0}
        with self._transaction():
            done["released"] = self.conn.execute(
                "UPDATE items SET state = 'queued', worker = NULL, lease_until = NULL "
                "WHERE state = 'claimed'"
            ).rowcount
        rows = {name: state for name, state in self.conn.execute("SELECT name, state FROM items")}
        for entry in os.scandir(self.files):
            if entry.name.endswith(
                ".partial"
            ):  # never answered success: the sender was told it failed
                Path(entry.path).unlink(missing_ok=True)
                done["removed_files"] += 1
            elif entry.name.endswith(SUFFIX) and entry.name not in rows:
                # written but not recorded when the process died: the sender saw no success, but the
                # bytes are whole (renamed after fsync), so queue them rather than drop them
                with self._transaction():
                    self.conn.execute(
                        "INSERT INTO items (name, state, received) VALUES (?, 'queued', ?)",
                        (entry.name, entry.stat().st_mtime),
                    )
                    self._count("received")
                done["requeued_files"] += 1
            elif rows.get(entry.name) in ("done", "quarantined", "lost"):
                Path(entry.path).unlink(missing_ok=True)
                done["removed_files"] += 1
        present = {entry.name for entry in os.scandir(self.files)}
        missing = [
            name for name, state in rows.items() if state in OPEN_STATES and name not in present
        ]
        if missing:
            with self._transaction():
                for name in missing:
                    self.conn.execute(
                        "UPDATE items SET state = 'lost', reason = 'spool-file-missing', "
                        "finished = ? WHERE name = ?",
                        (time.time(), name),
                    )
                    self._count("lost")
            done["lost"] = len(missing)
        with self._transaction():
            done["pruned"] = self.conn.execute(
                "DELETE FROM items WHERE state IN ('done', 'quarantined', 'lost') AND finished < ?",
                (time.time() - KEEP_FINISHED_SECONDS,),
            ).rowcount
        fsync_dir(self.files)
        return done

    # -- status -------------------------------------------------------------------------------
    def stats(self) -> dict[str, float | int]:
        with self._lock:
            return spool_stats(self.conn)

    # -- internals ----------------------------------------------------------------------------
    def _transaction(self, *, synced: bool = True) -> _Transaction | _Joined:
        """A write transaction, committed with synchronous=FULL unless ``synced`` is False; inside
        :meth:`together`, a synced one joins its transaction."""
        if synced and self._together is not None:
            return _Joined(self._together)
        return _Transaction(self.conn if synced else self.unsynced, self._lock)

    def _count(self, name: str, n: int = 1, *, conn: sqlite3.Connection | None = None) -> None:
        (conn or self.conn).execute(
            "UPDATE counters SET value = value + ? WHERE name = ?", (n, name)
        )

    def _finish(self, item: Item, state: str, reason: str | None) -> None:
        self.conn.execute(
            "UPDATE items SET state = ?, reason = ?, finished = ?, worker = NULL, "
            "lease_until = NULL WHERE id = ?",
            (state, reason, time.time(), item.id),
        )

    def _delete(self, path: Path) -> None:
        if self._together is not None:  # once the finish is committed
            self._together.finished.append(path)
            return
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # removed at the next start-up (its row says it is finished)


#: the most buffers one writev takes (an object received in many PDUs comes in as many parts)
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


def _write_all(fd: int, parts: tuple[bytes | memoryview, ...]) -> None:
    """Write ``parts`` to ``fd`` in order, in as few system calls as it takes."""
    views = [memoryview(part) for part in parts if len(part)]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error).  A failed commit is rolled
    back too (SQLite may leave it open after SQLITE_FULL), so the connection stays usable; a
    refusal of the file system comes out as :class:`StorageUnavailable`."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self.conn = conn
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._rollback()
            self.lock.release()
            failure = storage_failure(exc) if isinstance(exc, sqlite3.Error) else None
            if failure is not None:
                raise failure from exc
            raise
        return self.conn

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        error = exc
        try:
            if error is None:
                try:
                    self.conn.execute("COMMIT")
                    return
                except sqlite3.Error as commit_error:
                    error = commit_error
            self._rollback()
        finally:
            self.lock.release()
        failure = storage_failure(error) if isinstance(error, sqlite3.Error) else None
        if failure is not None:
            raise failure from error
        if error is not exc:
            raise error

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled it back itself


class _Together:
    """The transaction of :meth:`Spool.together`: begun by the first write that joins it."""

    def __init__(self, transaction: _Transaction) -> None:
        self.transaction = transaction
        self.begun = False
        self.finished: list[Path] = []  # originals to delete once committed

    def begin(self) -> sqlite3.Connection:
        if not self.begun:
            self.transaction.__enter__()
            self.begun = True
        return self.transaction.conn

    def __enter__(self) -> _Together:
        return self

    def __exit__(self, _type: object, exc: BaseException | None, tb: object) -> None:
        if self.begun:
            self.transaction.__exit__(_type, exc, tb)  # commit, or roll back on an error
        if exc is not None:
            self.finished.clear()


class _Joined:
    """A synced write inside :meth:`Spool.together`: part of its transaction."""

    def __init__(self, together: _Together) -> None:
        self.together = together

    def __enter__(self) -> sqlite3.Connection:
        return self.together.begin()

    def __exit__(self, *_exc: object) -> None:
        pass  # committed (or rolled back) with the whole


def spool_stats(conn: sqlite3.Connection) -> dict[str, float | int]:
    """Counters since the spool was made; depth, retrying, in progress, the oldest item's age."""
    stats: dict[str, float | int] = {
        name: value for name, value in conn.execute("SELECT name, value FROM counters")
    }
    states = dict(
        conn.execute(
            "SELECT state, COUNT(*) FROM items WHERE state IN ('queued', 'claimed', 'retry') "
            "GROUP BY state"
        ).fetchall()
    )
    stats["depth"] = sum(states.values())
    stats["queued"] = states.get("queued", 0)
    stats["in_progress"] = states.get("claimed", 0)
    stats["retrying"] = states.get("retry", 0)
    oldest = conn.execute(
        "SELECT MIN(received) FROM items WHERE state IN ('queued', 'claimed', 'retry')"
    ).fetchone()[0]
    stats["oldest_age_seconds"] = (
        round(max(0.0, time.time() - oldest), 3) if oldest is not None else 0.0
    )
    return stats


def read_stats(data: Path) -> dict[str, Any]:
    """The spool's statistics from the data folder of a node (running or not), read-only, with
    the state of its file system (against the minimum of free space the node was started with)."""
    path = data / "spool" / DB_NAME
    if not path.is_file():
        raise FileNotFoundError(path)
    conn = connect(path, reader=True)
    try:
        stats: dict[str, Any] = dict(spool_stats(conn))
        row = conn.execute("SELECT value FROM settings WHERE name = 'min_free_bytes'").fetchone()
    except sqlite3.OperationalError:  # a spool made before the settings table
        row = None
    finally:
        conn.close()
    stats.update(storage_status(path.parent, int(row[0]) if row else 0).as_stats())
    return stats
