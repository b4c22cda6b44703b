"""The durable queue of received objects: slot files on disk plus SQLite tables (WAL mode,
synchronous=FULL).

An object is kept in a *slot*: a reusable, preallocated file of ``incoming/`` (format:
:mod:`deid.spool_slots`: a header naming the object by a random token, its length and checksum,
then its bytes).  A put takes a free slot large enough, writes the object at its start in one
``pwritev`` and makes it durable with one ``fdatasync`` (the space is allocated and written
already: no metadata to sync); only when no free slot fits is one created or grown (written in
full, zeros after the object), then synced in full (and its folder, for a new file).  The ``slots`` table says which object each slot holds (``token``)
and which was finished in it last (``finished``); an item's row names its slot and token.

Two writes need no sync of their own: a new item's row (its object is durable before the sender
is answered, and :meth:`Spool.recover` queues a whole object no row names: the receiver commits
the row after the answer, :meth:`Spool.queue_answered`) and a claim (every
claim is released at start-up).  They are committed with synchronous=NORMAL: a power cut may undo
them, never reorder them; the next synced commit (an ack, which must outlive the reuse of the
original's slot) makes them durable too, since the write-ahead log is synced in order.

An item is put, claimed by a worker under a lease, and ends acknowledged (forwarded everywhere)
or quarantined; in between it may wait for a retry at a set time.  A slot is free again only in
the synced commit that finishes its item (never while a worker may read it), and a worker's read
checks the slot still holds its object whole.  Rows of finished items are kept (for the counts and
for start-up checks) and pruned after a week.  :meth:`Spool.recover` puts everything right after
a crash: claims of dead workers are released; a slot holding a whole object that is neither
finished nor named by an open row is queued (answered success, its unsynced row lost); a slot
that does not hold its item's object whole (torn by a crash mid-write: never answered success)
is free; rows whose object is gone are counted as lost.

What stays on disk: a free slot keeps the bytes of the object last finished in it until a put
reuses it.  Free slots unused for :data:`SLOT_IDLE_SECONDS`, and those beyond the puts of that
last period, are deleted by the process that puts (looked at every :data:`TRIM_SECONDS`); the
node's shutdown and start-up delete every free slot.  Spools written before slots (one
``<random>.dcm`` file per object) are still read, forwarded and finished: their files are deleted
once finished, as they were.

When the file system refuses writes (full, read-only, I/O errors) an operation raises
:class:`StorageUnavailable` and changes nothing: an environmental condition that passes, not a
fault of any object.  :func:`storage_status` says, from the file system alone, whether the spool's
disk is below the node's minimum of free space.

Slot and spool file names are random: nothing of the object reaches a path.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any

from deid.io.database import private_database
from deid.io.writer import fsync_dir
from deid.spool_slots import (
    HEADER_SIZE,
    new_token,
    pack_header,
    read_object,
    slot_object,
    slot_token,
    write_object,
)

DB_NAME = "queue.sqlite"
FILES = "incoming"
SUFFIX = ".dcm"  # a spool file of before slots (one object, deleted once finished)
SLOT_SUFFIX = ".slot"
SLOT_IDLE_SECONDS = 600  # a free slot unused this long is deleted (it holds a finished object)
TRIM_SECONDS = 60  # how often the process that puts looks for free slots to delete
SLOT_MAKER_IDLE_SECONDS = 1.0  # the receiver's slot maker thread ends once idle this long
SLOT_STEP = 64 * 1024  # slots are allocated in these steps (objects of about one size share them)
KEEP_FINISHED_SECONDS = 7 * 24 * 3600
COUNTERS = ("received", "processed", "forwarded", "quarantined", "retried", "lost")
OPEN_STATES = ("queued", "claimed", "retry")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,          -- the object's token in ``slot``, or (before slots) its
                                        -- spool file name (random; no PHI)
    state TEXT NOT NULL,                -- queued | claimed | retry | done | quarantined | lost
    received REAL NOT NULL,             -- unix time the object was answered success
    attempts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0, -- workers that died holding it (a poison object)
    next_at REAL NOT NULL DEFAULT 0,    -- a retry waits until then
    lease_until REAL,
    worker TEXT,
    sent TEXT NOT NULL DEFAULT '[]',    -- JSON list of destinations that already have it
    reason TEXT,                        -- last reason code (no PHI)
    finished REAL,
    slot TEXT                           -- the slot file holding it (NULL: a file of its own)
);
CREATE INDEX IF NOT EXISTS items_state ON items (state, next_at);
CREATE TABLE IF NOT EXISTS slots (
    name TEXT PRIMARY KEY,              -- slot file name (random; no PHI)
    size INTEGER NOT NULL,              -- bytes allocated (0: being created)
    token TEXT,                         -- the object it holds or is being written (NULL: free)
    finished TEXT,                      -- the object finished in it last (its header may say so)
    used REAL NOT NULL                  -- when it was last written or freed
);
CREATE INDEX IF NOT EXISTS slots_free ON slots (token, size);
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
class Spooled:
    """An object :meth:`Spool.write` made durable, not yet queued: its token, its slot (name,
    size when reserved), the slot's size now and the bytes it takes there."""

    token: str
    slot: tuple[str, int]
    size: int
    need: int


@dataclass(frozen=True)
class Item:
    """A claimed item: its row id, slot (or spool file), attempts so far and destinations already
    done; ``token``: the object's in its slot (None: a spool file of its own, from before slots)."""

    id: int
    path: Path
    attempts: int
    sent: tuple[str, ...]
    received: float
    crashes: int = 0
    token: str | None = None


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
        self._node = min_free_bytes is not None  # the node's handle (not a worker's)
        self.db_path = folder / DB_NAME
        self._lock = threading.Lock()  # the receiver's association threads share this connection
        self._together: _Together | None = None  # releases gathered into one commit (together)
        # this handle's puts over the last SLOT_IDLE_SECONDS, counted per TRIM_SECONDS: [period, n]
        # (a count per minute, not a time per put: a busy node puts ~100,000 in that while)
        self._puts: deque[list[int]] = deque()
        self._next_trim = time.monotonic() + TRIM_SECONDS  # when :meth:`tidy` looks again
        # a free slot reserved for the next write (token, (name, size)), set aside by a queue
        self._aside: tuple[str, tuple[str, int]] | None = None
        self._unqueued: list[Spooled] = []  # answered objects whose rows wait to be committed
        # sizes of slots to make ahead for the receiver (:meth:`_new_slot`), by its own thread
        self._to_make: Queue[int | None] = Queue(maxsize=1)
        self._slot_maker: threading.Thread | None = None
        try:
            for path in (folder, self.files):
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(path, 0o700)  # originals: a PHI zone
            private_database(self.db_path)  # before WAL mode: its -wal and -shm are 0600 too
            self.conn = connect(self.db_path)
            self.conn.executescript(_SCHEMA)  # changes nothing (writes nothing) once it exists
            if "slot" not in _columns(self.conn, "items"):  # a spool made before slots
                with self._transaction():
                    if "slot" not in _columns(self.conn, "items"):
                        self.conn.execute("ALTER TABLE items ADD COLUMN slot TEXT")
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
        """Close the handle; a node's (``min_free_bytes`` given) deletes every free slot first."""
        if self._unqueued:
            self.queue_answered_waiting()
        with self._lock:
            maker = self._slot_maker
        if maker is not None:
            self._to_make.put(None)
            maker.join()
        self._free_aside()  # (trim gives it back too, but a worker's handle does not trim)
        if self._node:
            try:
                self.trim(keep=0)
            except (OSError, sqlite3.Error, SpoolError):
                pass  # deleted at the next start-up
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

        :meth:`write`, then :meth:`queue`; a row that cannot be committed undoes the write."""
        written = self.write(*parts)
        try:
            return self.queue(written)
        except SpoolError:
            self._give_back(written.slot, written.token, written=True)
            raise

    def write(self, *parts: bytes | memoryview) -> Spooled:
        """Make the object durable in a slot, not yet queued: the receiver answers success then,
        and queues it after the answer (:meth:`queue_answered`).  Raises as :meth:`put`.

        The object goes into a free slot (reserved in the ``slots`` table first, so no other
        put takes it: the one :meth:`queue` set aside when it fits) with one ``fdatasync``.  A
        crash before the sync leaves a torn slot (never answered success; free at recovery),
        after it a whole object (queued at recovery: :meth:`recover`)."""
        need = HEADER_SIZE + sum(len(part) for part in parts)
        aside = self._take_aside(need)
        token = aside[0] if aside is not None else new_token()
        slot: tuple[str, int] | None = aside[1] if aside is not None else None
        header = pack_header(token, parts)
        try:
            if self.min_free_bytes:
                stats = os.statvfs(self._files)
                if stats.f_bavail * stats.f_frsize < self.min_free_bytes + need:
                    raise StorageUnavailable(DISK_FULL, "spool (below min_free_mb)")
            if slot is None:
                slot = self._reserve(token, need)
            size = self._write(slot, need, header, parts)
        except (OSError, sqlite3.Error) as exc:
            if slot is not None:
                self._give_back(slot, token)
            failure = storage_failure(exc)
            if failure is not None:
                raise StorageUnavailable(failure.kind, "spool") from None
            raise SpoolError(f"cannot write to the spool ({exc.__class__.__name__})") from None
        except StorageUnavailable:
            if slot is not None:
                self._give_back(slot, token)
            raise
        return Spooled(token, slot, size, need)

    def queue(self, written: Spooled, *, make_aside: bool = False) -> int:
        """Queue an object :meth:`write` made durable (its row, unsynced: see the module's
        docstring); returns the item id.  In the same commit, a free slot that fits an object of
        its size is set aside for the next write (which then needs no commit of its own before
        its sync); with ``make_aside`` (the receiver), where no free slot fits, a new one is
        made and set aside by a thread of the spool's own (:meth:`_make_slots`).  Raises
        :class:`SpoolError` when the row cannot be committed."""
        now = time.time()
        aside: tuple[str, tuple[str, int]] | None = None
        try:
            with self._transaction(synced=False) as conn:
                cursor = conn.execute(
                    "INSERT INTO items (name, slot, state, received) VALUES (?, ?, 'queued', ?)",
                    (written.token, written.slot[0], now),
                )
                conn.execute(
                    "UPDATE slots SET size = ?, used = ? WHERE name = ?",
                    (written.size, now, written.slot[0]),
                )
                self._count("received", conn=conn)
                if self._aside is None:
                    aside = self._free_slot(conn, new_token(), written.need)
        except (StorageUnavailable, sqlite3.Error) as exc:
            if isinstance(exc, StorageUnavailable):
                raise
            raise SpoolError(
                f"cannot record the object in the queue ({exc.__class__.__name__})"
            ) from None
        if aside is not None:
            self._set_aside(aside)
        elif make_aside and self._aside is None:
            self._make_later(written.need)
        self._put_done(now)
        return int(cursor.lastrowid or 0)

    def _set_aside(self, aside: tuple[str, tuple[str, int]]) -> None:
        """Set a reserved slot aside for the next write (given back if one is aside already)."""
        with self._lock:
            if self._aside is None:
                self._aside = aside
                return
        self._give_back(aside[1], aside[0])  # (another thread set one aside meanwhile)

    def _make_later(self, need: int) -> None:
        """Have this handle's slot maker make a slot of ``need`` bytes and set it aside (a need
        while it is busy with another is dropped).  The maker is a thread started at a need and
        ended once idle for :data:`SLOT_MAKER_IDLE_SECONDS` (a quiet node keeps no thread)."""
        with self._lock:
            try:
                self._to_make.put_nowait(need)
            except Full:
                return
            if self._slot_maker is None:
                self._slot_maker = threading.Thread(
                    target=self._make_slots, name="deid-spool-slots", daemon=True)
                self._slot_maker.start()

    def _make_slots(self) -> None:
        """The slot maker: makes each slot asked for while none is set aside, until ``None``."""
        while True:
            try:
                need = self._to_make.get(timeout=SLOT_MAKER_IDLE_SECONDS)
            except Empty:
                with self._lock:  # (no need put meanwhile: _make_later puts under the lock)
                    if self._to_make.empty():
                        self._slot_maker = None
                        return
                continue
            try:
                if need is None:
                    return
                if self._aside is None and (made := self._new_slot(need)) is not None:
                    self._set_aside(made)
            finally:
                self._to_make.task_done()

    def queue_answered(self, written: Spooled) -> str | None:
        """Queue an object whose sender was answered success (never raises: the object is not
        to be lost).  A row that cannot be committed now (a full disk) is tried again at the
        next of these and at each :meth:`tidy`; after a restart :meth:`recover` queues the
        object.  Returns None once queued, else the error's type (for the caller's log)."""
        with self._lock:
            self._unqueued.append(written)
        return self.queue_answered_waiting()

    def queue_answered_waiting(self) -> str | None:
        """Queue the answered objects whose rows could not be committed yet (oldest first); if
        no free slot fits the last of them, the slot maker makes one for the next object.
        Returns None when none waits any more, else the type of the error that stopped it."""
        with self._lock:
            waiting, self._unqueued = self._unqueued, []
        for index, each in enumerate(waiting):
            try:
                self.queue(each, make_aside=index == len(waiting) - 1)
            except Exception as exc:  # noqa: BLE001  (whatever it is, the object stays to be queued)
                with self._lock:
                    self._unqueued[:0] = waiting[index:]
                return type(exc).__name__
        return None

    def _new_slot(self, need: int) -> tuple[str, tuple[str, int]] | None:
        """A new slot for an object of ``need`` bytes, made ahead of the write that will take
        it (the receiver's next object, likely of a size with this one): written in full and
        synced with its folder's entry, as :meth:`_write` makes one, then reserved for a new
        token (token, (name, size)).  Making one takes ~1-2 ms (mostly waiting for the disk),
        against ~0.2 for a write into it: the receiver's thread, which reads the next object
        meanwhile, does not wait for it.  None when the disk refuses or is below the node's
        minimum (the write then makes its slot itself); a crash leaves a slot of zeros, free at
        recovery."""
        capacity = -(-need // SLOT_STEP) * SLOT_STEP
        name, token = uuid.uuid4().hex + SLOT_SUFFIX, new_token()
        path = f"{self._files}/{name}"
        try:
            if self.min_free_bytes:
                stats = os.statvfs(self._files)
                if stats.f_bavail * stats.f_frsize < self.min_free_bytes + capacity:
                    return None
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _allocate(fd, capacity)
                _zero(fd, 0, capacity)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self._files)
            with self._transaction(synced=False) as conn:
                conn.execute(
                    "INSERT INTO slots (name, size, token, used) VALUES (?, ?, ?, ?)",
                    (name, capacity, token, time.time()),
                )
        except (OSError, sqlite3.Error, SpoolError):
            with suppress(OSError):
                os.unlink(path)
            return None
        return token, (name, capacity)

    def _take_aside(self, need: int) -> tuple[str, tuple[str, int]] | None:
        """The slot :meth:`queue` set aside, with the token it is reserved for, if it fits
        ``need`` bytes (else it stays aside, for a smaller object)."""
        with self._lock:
            aside = self._aside
            if aside is None or aside[1][1] < need:
                return None
            self._aside = None
        return aside

    def _free_aside(self) -> None:
        """Give back the slot set aside (the handle closes)."""
        with self._lock:
            aside, self._aside = self._aside, None
        if aside is not None:
            self._give_back(aside[1], aside[0])

    def _reserve(self, token: str, need: int) -> tuple[str, int]:
        """A slot for an object of ``need`` bytes, now holding ``token`` in the table (unsynced:
        recovery frees a slot whose object is not whole): its name and allocated size, the
        smallest free one that fits, else the largest free one (to grow), else a new one (0)."""
        with self._transaction(synced=False) as conn:
            found = self._free_slot(conn, token, need)
            if found is not None:
                return found[1]
            row = conn.execute(
                "SELECT name, size FROM slots WHERE token IS NULL ORDER BY size DESC LIMIT 1"
            ).fetchone()
            if row is None:
                row = (uuid.uuid4().hex + SLOT_SUFFIX, 0)
                conn.execute(
                    "INSERT INTO slots (name, size, token, used) VALUES (?, 0, ?, ?)",
                    (row[0], token, time.time()),
                )
            else:
                conn.execute("UPDATE slots SET token = ? WHERE name = ?", (token, row[0]))
        return row[0], row[1]

    @staticmethod
    def _free_slot(
        conn: sqlite3.Connection, token: str, need: int
    ) -> tuple[str, tuple[str, int]] | None:
        """In a transaction: the smallest free slot of at least ``need`` bytes, now reserved for
        ``token`` (token, (name, size)); None when no free slot is that large."""
        row = conn.execute(
            "SELECT name, size FROM slots WHERE token IS NULL AND size >= ? "
            "ORDER BY size, used DESC LIMIT 1",
            (need,),
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE slots SET token = ? WHERE name = ?", (token, row[0]))
        return token, (row[0], row[1])

    def _write(
        self, slot: tuple[str, int], need: int, header: bytes, parts: tuple[bytes | memoryview, ...]
    ) -> int:
        """Write the object into ``slot`` and make it durable; returns the slot's size now."""
        path, size = f"{self._files}/{slot[0]}", slot[1]
        fd = -1
        if size:
            try:
                fd = os.open(path, os.O_WRONLY)
            except FileNotFoundError:  # deleted behind our back: made again
                size = 0
        if fd < 0:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            if size >= need:
                write_object(fd, header, parts)
                os.fdatasync(fd)  # the space is allocated and written: only the data to sync
                return size
            # a new slot, or one too small: allocated, written and synced in full
            capacity = -(-need // SLOT_STEP) * SLOT_STEP
            _allocate(fd, capacity)
            write_object(fd, header, parts)
            _zero(fd, need, capacity)
            os.fsync(fd)
        finally:
            os.close(fd)
        if size == 0:
            fsync_dir(self._files)  # a new file: its folder's entry too
        return capacity

    def _give_back(self, slot: tuple[str, int], token: str, *, written: bool = False) -> None:
        """Free a slot a failed put reserved (best effort: recovery frees it anyway); a new one
        is deleted, and an object ``written`` whole but refused is made unreadable first."""
        path = f"{self._files}/{slot[0]}"
        try:
            if written:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.pwrite(fd, bytes(HEADER_SIZE), 0)
                finally:
                    os.close(fd)
            if slot[1] == 0:
                _unlink(path)
            with self._transaction(synced=False) as conn:
                if slot[1] == 0:
                    conn.execute("DELETE FROM slots WHERE name = ? AND token = ?", (slot[0], token))
                else:
                    conn.execute(
                        "UPDATE slots SET token = NULL WHERE name = ? AND token = ?",
                        (slot[0], token),
                    )
        except (OSError, sqlite3.Error, SpoolError):
            pass

    def _put_done(self, now: float) -> None:
        """Note a put (the free slots kept follow the recent puts) and tidy now and then."""
        period = int(now // TRIM_SECONDS)
        with self._lock:
            puts = self._puts
            if puts and puts[-1][0] == period:
                puts[-1][1] += 1
            else:
                puts.append([period, 1])
            while puts[0][0] < period - SLOT_IDLE_SECONDS // TRIM_SECONDS:
                puts.popleft()
        self._trim_now_and_then()

    def tidy(self) -> int:
        """Queue the answered objects whose rows wait (:meth:`queue_answered`); every
        :data:`TRIM_SECONDS` (else nothing more: cheap to call often, as the node's main loop
        does), delete free slots unused for :data:`SLOT_IDLE_SECONDS` and those beyond the puts
        of that last period; returns how many slots were deleted."""
        if self._unqueued:
            self.queue_answered_waiting()
        return self._trim_now_and_then()

    def _trim_now_and_then(self) -> int:
        """The trim of :meth:`tidy`, every :data:`TRIM_SECONDS` (else nothing)."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_trim:
                return 0
            self._next_trim = now + TRIM_SECONDS
            since = int(time.time() // TRIM_SECONDS) - SLOT_IDLE_SECONDS // TRIM_SECONDS
            keep = sum(n for period, n in self._puts if period >= since)
        try:
            return self.trim(keep=keep)
        except (OSError, sqlite3.Error, SpoolError):
            return 0  # the next time, or at shutdown or the next start-up

    def trim(self, *, keep: int | None = None) -> int:
        """Delete free slots unused for :data:`SLOT_IDLE_SECONDS`, and all but the ``keep``
        used last (None: no such limit); returns how many.  They are marked taken first (no put
        picks them), then deleted, then their rows: a crash in between leaves a slot the next
        recovery frees or forgets.  The slot set aside for the next write is given back first
        (so that it too is deleted once unused a while)."""
        self._free_aside()
        now = time.time()
        with self._transaction(synced=False) as conn:
            free = conn.execute(
                "SELECT name, used FROM slots WHERE token IS NULL ORDER BY used DESC"
            ).fetchall()
            doomed = [
                name
                for index, (name, used) in enumerate(free)
                if used < now - SLOT_IDLE_SECONDS or (keep is not None and index >= keep)
            ]
            conn.executemany("UPDATE slots SET token = '' WHERE name = ?", [(n,) for n in doomed])
        for name in doomed:
            _unlink(f"{self._files}/{name}")
        if doomed:
            with self._transaction(synced=False) as conn:
                conn.executemany(
                    "DELETE FROM slots WHERE name = ? AND token = ''", [(n,) for n in doomed]
                )
        return len(doomed)

    # -- workers ----------------------------------------------------------------------------
    def claim(self, worker: str, *, lease: float = 600.0) -> Item | None:
        """The next item due (queued, a retry whose time has come, or an expired lease), now
        leased to ``worker``; ``None`` when nothing is due.  (Every write below raises
        :class:`StorageUnavailable`, changing nothing, when the file system refuses it.)"""
        now = time.time()
        with self._transaction(synced=False) as conn:  # released at start-up anyway
            row = conn.execute(
                "SELECT id, name, attempts, sent, received, crashes, slot FROM items WHERE "
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
        ident, name, attempts, sent, received, crashes, slot = row
        return Item(ident, self.files / (slot or name), attempts, tuple(json.loads(sent)),
                    received, crashes, name if slot else None)

    def read(self, item: Item) -> bytes:
        """The original bytes of a claimed item (OSError when they cannot be read, or its slot
        does not hold them whole: :class:`deid.spool_slots.SlotDamaged`)."""
        if item.token is None:
            return item.path.read_bytes()
        return read_object(item.path, item.token)

    def mark_sent(self, item: Item, destination: str) -> Item:
        """Record that ``destination`` has the object (a retry will not send it there again)."""
        sent = tuple(sorted(set(item.sent) | {destination}))
        with self._transaction():
            self.conn.execute("UPDATE items SET sent = ? WHERE id = ?", (json.dumps(sent), item.id))
        return replace(item, sent=sent)

    def ack(self, item: Item, *, processed: bool = False) -> None:
        """The object reached every destination: finish the item, then delete its original.
        ``processed``: it was de-identified in this attempt (counted in the same commit)."""
        with self._transaction():
            self._finish(item, "done", None)
            self._count("forwarded")
            if processed:
                self._count("processed")
        self._delete(item)

    def quarantine(self, item: Item, reason: str) -> None:
        """The object went to the quarantine (the caller put it there): finish the item."""
        with self._transaction():
            self._finish(item, "quarantined", reason)
            self._count("quarantined")
        self._delete(item)

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
        for item in together.finished:
            self._delete(item)

    # -- start-up -----------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """Put the spool right after a crash (before any worker starts); returns what was done.

        Each slot is read: one holding its open item's object stays so; one holding a whole
        object that no row names and that is not the one finished in it last was answered
        success and its unsynced row lost: queued; any other is free (torn by a crash before its
        object's sync, or finished), and deleted with every other free slot."""
        done = {"released": 0, "requeued_files": 0, "lost": 0, "removed_files": 0, "pruned": 0}
        with self._transaction():
            done["released"] = self.conn.execute(
                "UPDATE items SET state = 'queued', worker = NULL, lease_until = NULL "
                "WHERE state = 'claimed'"
            ).rowcount
        rows = {
            name: (state, slot)
            for name, state, slot in self.conn.execute("SELECT name, state, slot FROM items")
        }
        finished_in = dict(self.conn.execute("SELECT name, finished FROM slots"))
        holders = {
            slot: token
            for token, (state, slot) in rows.items()
            if slot is not None and state in OPEN_STATES
        }
        present: set[str] = set()  # files of their own (from before slots)
        kept: dict[str, str | None] = {}  # slot -> the object it holds after the crash
        found: list[tuple[str, int, str | None, float]] = []  # slot, size, object held, time
        queue: list[tuple[str, str | None, float]] = []  # objects without a row: name, slot, time
        for entry in os.scandir(self.files):
            name = entry.name
            if name.endswith(".partial"):  # never answered success: the sender was told it failed
                Path(entry.path).unlink(missing_ok=True)
                done["removed_files"] += 1
            elif name.endswith(SUFFIX) and name not in rows:
                # written but not recorded when the process died: the sender saw no success, but
                # the bytes are whole (renamed after fsync), so queue them rather than drop them
                queue.append((name, None, entry.stat().st_mtime))
                present.add(name)
            elif name.endswith(SUFFIX) and rows[name][0] not in OPEN_STATES:
                Path(entry.path).unlink(missing_ok=True)
                done["removed_files"] += 1
            elif name.endswith(SLOT_SUFFIX):
                stat = entry.stat()
                held = self._recovered_slot(entry.path, holders.get(name), finished_in.get(name),
                                            rows)
                if held is not None and held != holders.get(name):
                    queue.append((held, name, stat.st_mtime))
                kept[name] = held
                found.append((name, stat.st_size, held, stat.st_mtime))
            else:
                present.add(name)
        missing = [
            token
            for token, (state, slot) in rows.items()
            if state in OPEN_STATES
            and (token not in present if slot is None else kept.get(slot) != token)
        ]
        with self._transaction():
            gone = set(finished_in) - {name for name, *_ in found}  # (rows of files not there)
            self.conn.executemany("DELETE FROM slots WHERE name = ?", [(n,) for n in gone])
            self.conn.executemany(
                "INSERT INTO slots (name, size, token, used) VALUES (?, ?, ?, ?) ON CONFLICT "
                "(name) DO UPDATE SET size = excluded.size, token = excluded.token",
                found,
            )
            self.conn.executemany(
                "INSERT INTO items (name, slot, state, received) VALUES (?, ?, 'queued', ?)", queue
            )
            self._count("received", len(queue))
            now = time.time()
            self.conn.executemany(
                "UPDATE items SET state = 'lost', reason = 'spool-file-missing', finished = ? "
                "WHERE name = ?",
                [(now, token) for token in missing],
            )
            self._count("lost", len(missing))
        done["requeued_files"], done["lost"] = len(queue), len(missing)
        done["removed_files"] += self.trim(keep=0)
        with self._transaction():
            done["pruned"] = self.conn.execute(
                "DELETE FROM items WHERE state IN ('done', 'quarantined', 'lost') AND finished < ?",
                (time.time() - KEEP_FINISHED_SECONDS,),
            ).rowcount
        fsync_dir(self.files)
        return done

    @staticmethod
    def _recovered_slot(
        path: str, holder: str | None, finished: str | None, rows: dict[str, Any]
    ) -> str | None:
        """The object the slot at ``path`` keeps after a crash: ``holder`` (the open item naming
        it) if its header names it; else a whole object no row names and not ``finished`` in it
        last (answered success, its row lost); else None (free)."""
        try:
            token = slot_token(path)
            if token is not None and token == holder:
                return token  # (its bytes are checked when a worker reads them)
            if token is None or token in rows or token == finished:
                return None
            whole = slot_object(path)
        except OSError:
            return None
        return whole[0] if whole is not None and whole[0] == token else None

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
        """Finish the item; its slot is free once this is committed (synced)."""
        now = time.time()
        self.conn.execute(
            "UPDATE items SET state = ?, reason = ?, finished = ?, worker = NULL, "
            "lease_until = NULL WHERE id = ?",
            (state, reason, now, item.id),
        )
        if item.token is not None:  # (not if it was finished by another and its slot reused)
            self.conn.execute(
                "UPDATE slots SET token = NULL, finished = token, used = ? "
                "WHERE name = ? AND token = ?",
                (now, item.path.name, item.token),
            )

    def _delete(self, item: Item) -> None:
        """Delete a finished item's own spool file (from before slots; a slot is freed instead)."""
        if item.token is not None:
            return
        path = item.path
        if self._together is not None:  # once the finish is committed
            self._together.finished.append(item)
            return
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # removed at the next start-up (its row says it is finished)


def _allocate(fd: int, size: int) -> None:
    """Allocate ``size`` bytes to the file (a file system that cannot preallocate: its size is
    set, and a put into the holes allocates them: its sync covers that too, only slower)."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)


def _zero(fd: int, start: int, end: int) -> None:
    """Write zeros from ``start`` to ``end``: space only allocated is *unwritten* (ext4, XFS), and
    the sync of a later, larger object reaching into it would commit the conversion to the
    journal too (0.39 against 0.23-0.29 ms for 530 KB here); written once, a reuse syncs data
    alone."""
    zeros = bytes(min(end - start, SLOT_STEP))
    while start < end:
        start += os.pwrite(fd, zeros[: end - start], start)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


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
        self.finished: list[Item] = []  # items whose own files to delete once committed

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


def waiting_originals(folder: Path) -> list[tuple[str, Path, int]]:
    """The originals waiting in the spool at ``folder`` (queued, in progress or retrying; read
    from its database without a writer's lock): for each a key that names it for good, its file
    and where its bytes start there.  Files of their own (from before slots) are all listed."""
    files = folder / FILES
    found: list[tuple[str, Path, int]] = []
    if (folder / DB_NAME).is_file():
        conn = connect(folder / DB_NAME, reader=True)
        try:
            rows = conn.execute(
                "SELECT name, slot FROM items WHERE slot IS NOT NULL AND state IN "
                "('queued', 'claimed', 'retry')"
            ).fetchall()
        except sqlite3.OperationalError:  # a spool made before slots
            rows = []
        finally:
            conn.close()
        found += [(token, files / slot, HEADER_SIZE) for token, slot in rows]
    if files.is_dir():
        found += [(str(path), path, 0) for path in files.glob(f"*{SUFFIX}")]
    return found
