"""SQLite database files that only their owner can read, side files (-wal, -shm) included.

SQLite's unix VFS creates a database's ``-wal`` and ``-shm`` files with the mode of the database
file itself (``findCreateFileMode``), each time it creates them (lazily, at the first write or
read in WAL mode, and again after the last connection removed them).  So a database file that
is 0600 before its first connection switches it to WAL mode keeps its side files 0600 for good,
with no change of the process's umask: a umask is process-wide, and the node's receiver creates
spool files from threads of its own while a worker may open a database; changing it there
would race with them.  A connection opened by ``sqlite3.connect`` creates the database file with
the umask's mode (0644): :func:`private_database` creates it first, empty (SQLite takes an empty
file for an empty database), so it never exists readable by others.
"""

from __future__ import annotations

import os
from pathlib import Path

SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's, beside a database file


def private_database(path: Path) -> None:
    """Make the database file ``path`` owner-only (0600), creating it empty when it is new; call
    it before the first connection to it.  Side files an older version left with the umask's
    mode (a crash leaves them; SQLite reuses them as they are) are made owner-only too."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)  # a file made before this (by another umask, an older version)
    for suffix in SIDE_FILES:
        try:
            os.chmod(f"{path}{suffix}", 0o600)
        except FileNotFoundError:
            pass  # not there (the usual case), or removed by another process's last close
