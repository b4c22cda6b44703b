"""The re-identification map: original <-> released identity values, encrypted at rest.

One file per writer in ``<records>/reid/`` (folder 0700, files 0600).  The first line is a plain
header (format, cipher and the key's public fingerprint); every other line is one entry, encrypted
on its own with AES-256-GCM under a sub-key derived from the secret key (``SecretKey.derive``) and
a random 96-bit nonce, as base64 of nonce + ciphertext.  Lines are appended whole, so a crash can
at most cut the last one, which readers skip.  Without the key the files say nothing.

Two kinds of entry: an object's original and released identity values (one per released object),
and ``"kind": "tokens"``: the identity tokens of a released study (``deid.engine.review``: names,
IDs, dates, institution...), written once per distinct token set of a study (again, should it come
back after the writer's last ``TOKEN_SETS_KEPT`` sets: readers merge them), so that ``deid verify``
and ``deid report`` (with the key) can flag kept text of one object that names an identity seen in
another object of the same patient or study.  Tokens are never written anywhere else.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from deid.audit.files import AppendFile, file_stamp, utc_now
from deid.errors import UsageError
from deid.keys import SecretKey
from deid.pipeline import make_private_dir

REID_DIR = "reid"
FORMAT = "deid-reid-map"
VERSION = 1
CIPHER = "AES-256-GCM"
_PURPOSE = "reid-map-v1"
_AAD = b"deid-reid-map-v1"
TOKEN_SETS_KEPT = 4096  # token sets a writer remembers having written (see add_tokens)
IDENTITY_FIELDS = ("patient_id", "patient_name", "accession_number", "study_uid", "series_uid", "sop_uid")


class WrongKeyError(UsageError):
    """The key given does not open the re-identification map (exit code 2)."""


if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _cipher(key: SecretKey) -> AESGCM:
    # cryptography is imported with the first cipher (~8 ms): a run's process makes it with its
    # first map entry, after its workers are forked (they never write the map)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key.derive(_PURPOSE))


class ReidMapWriter:
    """Appends encrypted entries to this writer's own map file (created on the first entry)."""

    def __init__(self, records: Path, *, key: SecretKey, run_id: str, source: str) -> None:
        self.folder = records / REID_DIR
        self._name = f"{file_stamp()}-{source}-{run_id}.map"
        self._header = {"format": FORMAT, "version": VERSION, "cipher": CIPHER,
                        "key_fingerprint": key.fingerprint, "run_id": run_id, "source": source}
        self._key = key
        self._cipher: AESGCM | None = None  # made with the first entry
        self._file: AppendFile | None = None
        self._lock = threading.Lock()  # the service records from several threads
        # hashes of the (study, tokens) this writer wrote last (TOKEN_SETS_KEPT at most: a node's
        # writer lives for months; a set seen again after it left is written again, harmlessly)
        self._token_sets: dict[int, None] = {}

    def add(self, original: Mapping[str, str], released: Mapping[str, str | None], *, run_id: str) -> None:
        """Append one entry: the original and the released identity values of one object."""
        entry = {"time": utc_now(), "run_id": run_id,
                 "original": {k: original.get(k, "") for k in IDENTITY_FIELDS},
                 "released": dict(released)}
        self._write(entry)

    def add_tokens(self, released: Mapping[str, str], tokens: Iterable[str], *, run_id: str) -> None:
        """Append the identity tokens of an object under its released patient and study, unless this
        writer already holds the same tokens for that study."""
        values = frozenset(tokens)
        if not values:
            return
        key = hash((released.get("patient_id", ""), released.get("study_uid", ""), values))
        with self._lock:
            if key in self._token_sets:
                return
            self._token_sets[key] = None
            if len(self._token_sets) > TOKEN_SETS_KEPT:
                del self._token_sets[next(iter(self._token_sets))]
        self._write({"time": utc_now(), "run_id": run_id, "kind": "tokens",
                     "released": {k: released.get(k, "") for k in ("patient_id", "study_uid")},
                     "tokens": sorted(values)})  # sorted only when written: most sets are known

    def _write(self, entry: Mapping[str, object]) -> None:
        plain = orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS)
        nonce = os.urandom(12)
        if self._cipher is None:
            self._cipher = _cipher(self._key)
        sealed = nonce + self._cipher.encrypt(nonce, plain, _AAD)
        self._open().write(base64.b64encode(sealed) + b"\n")

    def _open(self) -> AppendFile:
        with self._lock:
            if self._file is None:
                make_private_dir(self.folder)
                self._file = AppendFile(self.folder / self._name)
                if self._file.path.stat().st_size == 0:
                    self._file.write(json.dumps(self._header, separators=(",", ":")).encode() + b"\n")
            return self._file

    def sync(self) -> None:
        if self._file is not None:
            self._file.sync()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class MapContents:
    """What a key opened: the entries, and what could not be read."""

    entries: list[dict] = field(default_factory=list)  # one per released object
    tokens: list[dict] = field(default_factory=list)  # "kind": "tokens" entries (see the module)
    files: int = 0
    other_key_files: int = 0  # map files written under another key (not opened)
    damaged_lines: int = 0  # complete lines that did not decrypt (altered or damaged)


def read_map(records: Path, key: SecretKey) -> MapContents:
    """Every entry of every map file the key opens.  Raises ``WrongKeyError`` when there are map
    files and the key opens none of them; nothing is returned in that case."""
    folder = records / REID_DIR
    files = sorted(folder.glob("*.map")) if folder.is_dir() else []
    if not files:
        raise UsageError(f"{records}: no re-identification map here (expected {REID_DIR}/*.map)")
    from cryptography.exceptions import InvalidTag

    cipher = _cipher(key)
    contents = MapContents(files=len(files))
    for path in files:
        lines = _lines(path)
        header = _header(next(lines, ""))
        if header is None or header.get("key_fingerprint") != key.fingerprint:
            contents.other_key_files += 1
            continue
        for line in lines:
            try:
                sealed = base64.b64decode(line, validate=True)
                plain = cipher.decrypt(sealed[:12], sealed[12:], _AAD)
                entry = json.loads(plain)
                (contents.tokens if entry.get("kind") == "tokens" else contents.entries).append(entry)
            except (ValueError, InvalidTag):
                contents.damaged_lines += 1
    if contents.other_key_files == len(files):
        raise WrongKeyError("the key does not open this re-identification map (it was written with "
                            "another key); use the key file of the run that wrote these records")
    return contents


class StudyTokens:
    """Identity tokens by released study and by released patient (from the map's token entries):
    what kept text of a released object must not name."""

    def __init__(self, entries: Iterable[Mapping]) -> None:
        self.by_study: dict[str, set[str]] = {}
        self.by_patient: dict[str, set[str]] = {}
        for entry in entries:
            released = entry.get("released") or {}
            tokens = [str(t) for t in entry.get("tokens") or () if t]
            for index, name in ((self.by_study, "study_uid"), (self.by_patient, "patient_id")):
                if released.get(name):
                    index.setdefault(str(released[name]), set()).update(tokens)
        self._patterns: dict[tuple[str, str], object] = {}

    def finder(self, patient_id: str, study_uid: str):  # type: ignore[no-untyped-def]
        """A function telling whether a text names a token of the patient or study (None: no tokens)."""
        key = (patient_id, study_uid)
        if key not in self._patterns:
            from deid.engine.review import token_pattern

            tokens = self.by_study.get(study_uid, set()) | self.by_patient.get(patient_id, set())
            self._patterns[key] = token_pattern(tuple(sorted(tokens))).search if tokens else None
        return self._patterns[key]


def read_tokens(records: Path, key: SecretKey) -> StudyTokens:
    """The identity tokens of a records folder's map, by released study and patient."""
    return StudyTokens(read_map(records, key).tokens)


def _lines(path: Path) -> Iterator[str]:
    """The whole lines of a file (a last line cut by a crash is left out)."""
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                if raw.endswith(b"\n") and raw.strip():
                    yield raw.decode("ascii", errors="replace").strip()
    except OSError:
        raise UsageError(f"{path}: cannot read the re-identification map (check permissions)") from None


def _header(line: str) -> dict | None:
    try:
        header = json.loads(line)
    except ValueError:
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None
