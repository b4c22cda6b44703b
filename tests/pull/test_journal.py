"""deid.pull.journal: the pull's memory of its queries is owner-only, SQLite's side files too."""

from __future__ import annotations

from pathlib import Path

from deid.pull.journal import DB_NAME, FOLDER, Journal


def test_the_journal_and_its_sqlite_side_files_are_owner_only_while_it_is_open(
        tmp_path: Path, usual_umask: None) -> None:
    """It holds original UIDs: its -wal and -shm are 0600 from their creation (SQLite gives them
    the database file's mode, made 0600 before the first write)."""
    journal = Journal(tmp_path / "records")
    journal.begin()
    folder = tmp_path / "records" / FOLDER
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert modes == {DB_NAME: 0o600, f"{DB_NAME}-wal": 0o600, f"{DB_NAME}-shm": 0o600}
    assert folder.stat().st_mode & 0o777 == 0o700
    journal.conn.close()
