"""The pull journal: ``<records>/pull/journal.sqlite`` (mode 0600; the records folder is a PHI
zone).  It holds the requested values with their references, what each C-FIND found (studies,
series, instances: original UIDs) and every retrieve the pull made, per run.

It is a memory of the queries, never the proof of a fetch: whether an instance is had is checked
each time against the released output, the quarantine and the spool (deid.pull.holdings).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from deid.io.database import private_database
from deid.pipeline import make_private_dir
from deid.pull.query import Instance, Series, Study
from deid.pull.requests import Request

FOLDER, DB_NAME = "pull", "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    ref TEXT PRIMARY KEY,       -- keyed digest: the request's only name outside this folder
    kind TEXT NOT NULL,         -- accession_number | patient_id
    value TEXT NOT NULL,        -- the requested value (PHI)
    query TEXT NOT NULL,        -- the filters the finds used (dates, modalities), JSON
    found REAL                  -- when its finds completed (NULL: not yet)
);
CREATE TABLE IF NOT EXISTS studies (
    ref TEXT NOT NULL, study_uid TEXT NOT NULL, announced INTEGER NOT NULL,
    filtered INTEGER NOT NULL, PRIMARY KEY (ref, study_uid)
);
CREATE TABLE IF NOT EXISTS instances (
    study_uid TEXT NOT NULL, series_uid TEXT NOT NULL, modality TEXT NOT NULL,
    sop_uid TEXT NOT NULL, sop_class TEXT NOT NULL, PRIMARY KEY (study_uid, series_uid, sop_uid)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, summary TEXT
);
CREATE TABLE IF NOT EXISTS retrieves (
    run INTEGER NOT NULL, time REAL NOT NULL, service TEXT NOT NULL, level TEXT NOT NULL,
    study_uid TEXT NOT NULL, series_uid TEXT NOT NULL, sop_uid TEXT NOT NULL,
    asked INTEGER NOT NULL, completed INTEGER, failed INTEGER, warning INTEGER, status INTEGER
);
"""


class Journal:
    """One pull's handle on the journal (a run is opened by :meth:`begin`)."""

    def __init__(self, records: Path) -> None:
        folder = make_private_dir(make_private_dir(records) / FOLDER)
        self.path = folder / DB_NAME
        private_database(self.path)  # before WAL mode: its -wal and -shm are 0600 too
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_SCHEMA)
        self.run = 0

    def begin(self) -> int:
        """Start a run; returns its number."""
        cursor = self.conn.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),))
        self.run = int(cursor.lastrowid or 0)
        return self.run

    def finish(self, summary: dict) -> None:
        self.conn.execute("UPDATE runs SET finished = ?, summary = ? WHERE id = ?",
                          (time.time(), json.dumps(summary, sort_keys=True), self.run))

    def studies(self, request: Request, query: dict) -> list[Study] | None:
        """What an earlier run's finds found for ``request`` with the same filters (None: not
        asked yet, or asked with other filters, or found nothing: ask again)."""
        row = self.conn.execute("SELECT query, found FROM requests WHERE ref = ?",
                                (request.ref,)).fetchone()
        if row is None or row[1] is None or row[0] != json.dumps(query, sort_keys=True):
            return None
        studies = []
        for uid, announced, filtered in self.conn.execute(
                "SELECT study_uid, announced, filtered FROM studies WHERE ref = ? "
                "ORDER BY rowid", (request.ref,)):
            study = Study(uid, announced, filtered=bool(filtered))
            series: dict[str, Series] = {}
            for series_uid, modality, sop_uid, sop_class in self.conn.execute(
                    "SELECT series_uid, modality, sop_uid, sop_class FROM instances "
                    "WHERE study_uid = ? ORDER BY rowid", (uid,)):
                if series_uid not in series:
                    series[series_uid] = Series(series_uid, modality)
                    study.series.append(series[series_uid])
                series[series_uid].instances.append(Instance(sop_uid, sop_class))
            studies.append(study)
        return studies or None

    def found(self, request: Request, query: dict, studies: list[Study]) -> None:
        """Keep what the finds found for ``request`` (replacing an earlier answer)."""
        text = json.dumps(query, sort_keys=True)
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT INTO requests (ref, kind, value, query, found) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (ref) DO UPDATE SET query = excluded.query, found = excluded.found",
                (request.ref, request.kind, request.value, text, time.time()))
            self.conn.execute("DELETE FROM studies WHERE ref = ?", (request.ref,))
            for study in studies:
                self.conn.execute("INSERT INTO studies VALUES (?, ?, ?, ?)",
                                  (request.ref, study.uid, study.announced, int(study.filtered)))
                self.conn.execute("DELETE FROM instances WHERE study_uid = ?", (study.uid,))
                self.conn.executemany(
                    "INSERT OR IGNORE INTO instances VALUES (?, ?, ?, ?, ?)",
                    [(study.uid, series.uid, series.modality, instance.sop_uid, instance.sop_class)
                     for series, instance in study.instances()])

    def retrieved(self, service: str, level: str, study_uid: str, series_uid: str, sop_uid: str,
                  asked: int, counts: tuple[int, int, int, int | None]) -> None:
        """Record one retrieve of this run: what it named, how many instances it was to bring,
        and the PACS's counts (completed, failed, warning, final status)."""
        self.conn.execute("INSERT INTO retrieves VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (self.run, time.time(), service, level, study_uid, series_uid, sop_uid,
                           asked, *counts))

    def asked(self, run: int | None = None) -> int:
        """Instances the retrieves of ``run`` (default: this one) were to bring."""
        row = self.conn.execute("SELECT COALESCE(SUM(asked), 0) FROM retrieves WHERE run = ?",
                                (self.run if run is None else run,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        self.conn.close()
