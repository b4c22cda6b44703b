"""The one loop step that turns a source file into an outcome; the only place that decides quarantine.

An object ends :class:`~deid.outcome.Written` or :class:`~deid.outcome.Quarantined` here.  The
pipeline writes nothing it releases: a written outcome carries the released bytes (``data``) and
the released object's facts, its place under the output among them (``released.output``); ``deid run`` writes them
(:func:`write_released`), the forwarding node sends them from memory.  It writes only the
quarantine (the original and its reason) and, with debugging on, a traceback.  Reasons found
outside it (a destination refused the object, workers died on it) are quarantined through
:meth:`Pipeline.quarantine` too, so every quarantine is made in one place."""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from pathlib import Path
from typing import Mapping

from deid.checks.complete import check_complete
from deid.checks.release import release_check
from deid.engine.deidentifier import Deidentifier
from deid.digest import content_digest
from deid.errors import ObjectError, internal_error_reason
from deid.io.encoder import encode
from deid.io.paths import output_path
from deid.io.reader import deferred_read_error, read_object
from deid.io.source import read_source, shown
from deid.io.writer import write_bytes_atomic
from deid.keys import SecretKey
from deid.outcome import Quarantined, Released, Written
from deid.profile.model import Profile
from deid.released import ReleasedIndex
from deid.sidecar import SIDECAR_FOLDER, SidecarRewriter, sidecar_kind

DEBUG_FOLDER = "debug"  # in the records: tracebacks of internal errors (deid run --debug, debug: true)


def make_private_dir(path: Path) -> Path:
    """A folder for PHI (quarantine, records): created and kept at mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


class Pipeline:
    """read -> rules -> write, with every failure turned into a quarantine entry."""

    def __init__(self, profile: Profile, key: SecretKey, *, out: Path, quarantine: Path,
                 lookup: Mapping[str, str] | None = None, durable: bool = True,
                 debug: Path | None = None, released: ReleasedIndex | None = None,
                 max_object_bytes: int | None = None) -> None:
        self.deidentifier = Deidentifier(profile, key, lookup=lookup)
        self.key = key
        self.max_object_bytes = max_object_bytes  # process_file: larger files are not read (too-large)
        self.sidecars = SidecarRewriter(self.deidentifier.uids, key)
        self.out = out
        self.quarantine_dir = quarantine
        self.durable = durable  # False: the caller syncs a batch before recording it (deid run)
        self.debug = debug  # the records folder: write tracebacks of internal errors there (PHI zone)
        # the UIDs released so far, over every process (deid.released); None: the output path only
        self.released = released

    def process_file(self, source: Path) -> Written | Quarantined:
        """:meth:`deidentify_file`, its bytes written under the output (callers that want files)."""
        return write_released(self.deidentify_file(source), self.out, durable=self.durable)

    def process_bytes(self, data: bytes) -> Written | Quarantined:
        """:meth:`deidentify_bytes`, its bytes written under the output (callers that want files)."""
        return write_released(self.deidentify_bytes(data), self.out, durable=self.durable)

    def deidentify_file(self, source: Path, name: str | None = None) -> Written | Quarantined:
        """A source file's outcome; a written one carries the released bytes, not yet written.

        ``name``: the source as a person knows it (deid run: its path relative to its SRC argument),
        named in its quarantine entry's reason.json (a PHI zone; never in the outcome, a log or the
        audit); its last part is the side-car's file name (default: the file's own)."""
        try:
            data = read_source(source, self.max_object_bytes)
        except ObjectError as exc:  # too large: not read, so the quarantine names it instead of a copy
            return self._quarantine_unread(source, exc.as_reason(), name)
        except OSError as exc:
            reason = ObjectError("unreadable", f"the file cannot be read ({exc.__class__.__name__}); check "
                                 "permissions and the storage", stage="read").as_reason()
            return Quarantined.of(reason)  # nothing read, nothing kept
        file_name = Path(name).name if name else source.name
        if sidecar_kind(file_name, data) is not None:
            outcome = self.deidentify_sidecar(file_name, data)
        else:
            outcome = self.deidentify_bytes(data)
        return self._named(outcome, name)

    def quarantine_file(self, source: Path, error: ObjectError, name: str | None = None) -> Quarantined:
        """Quarantine a source file for ``error`` found outside the pipeline (worker processes
        kept dying on it); ``name`` as for :meth:`deidentify_file`."""
        try:
            data = read_source(source, self.max_object_bytes)
        except (ObjectError, OSError):  # kept by name, not as a copy
            return self._quarantine_unread(source, error.as_reason(), name)
        original = "original" + Path(name or source.name).suffix.lower() \
            if sidecar_kind(Path(name or source.name).name, data) is not None else "original.dcm"
        return self._named(self.quarantine(data, error, original=original), name)

    def _named(self, outcome: Written | Quarantined, name: str | None) -> Written | Quarantined:
        """The outcome; a quarantine entry's reason.json now names its source as ``name``."""
        if name and isinstance(outcome, Quarantined) and outcome.entry:
            # the entry names its source (the entry's own name is keyed, never the path)
            reason_file = self.quarantine_dir / outcome.entry / "reason.json"
            reason = json.loads(reason_file.read_text(encoding="utf-8"))
            text = json.dumps({**reason, "source": name}, indent=2, sort_keys=True)
            write_bytes_atomic(text.encode() + b"\n", reason_file, mode=0o600)
        return outcome

    def deidentify_sidecar(self, name: str, data: bytes) -> Written | Quarantined:
        """A side-car annotation file (deid.sidecar): rewritten into OUT/annotations/, or quarantined."""
        original = "original" + Path(name).suffix.lower()
        try:
            sidecar = self.sidecars.rewrite(name, data)
        except ObjectError as exc:
            return self.quarantine(data, exc, original=original)
        except Exception as exc:  # fail closed
            return self._quarantine(data, self._internal_error(exc, "sidecar", data), original=original)
        target = self.out / SIDECAR_FOLDER / sidecar.name
        if target.is_file() and target.read_bytes() != sidecar.data:  # never overwrite another annotation
            error = ObjectError(
                "sidecar-name-collision", "another side-car for the same image was already released under "
                f"{SIDECAR_FOLDER}/{sidecar.name}; merge the two files, or release this one into another "
                "output folder", stage="write")
            return self.quarantine(data, error, original=original)
        facts = Released(str(target.relative_to(self.out)),
                         counts={f"sidecar_{sidecar.kind}": 1, "remap_uid": sidecar.uids})
        return Written(facts, sidecar.data)

    def deidentify_bytes(self, data: bytes) -> Written | Quarantined:
        """An object's outcome; a written one carries the released bytes, not yet written."""
        stage = "read"  # the stage under way, named in the reason of an internal error
        try:
            ds = read_object(data, private_drop=self.deidentifier.private_drop)
            check_complete(ds)  # the input's pixels can be read: nothing cut short goes out
            stage = "rules"
            result = self.deidentifier.deidentify(ds)
            stage = "encode"
            encoded = encode(result.dataset)
            stage = "check"
            checked = release_check(self.deidentifier.profile, data, result.dataset, result.sop_class_uid,
                                    encoded)
            stage = "write"
            target = output_path(self.out, result.patient_id, result.study_uid, result.series_uid,
                                 result.sop_uid)
            output = str(target.relative_to(self.out))
            if self._other_content_released(target, output, result.sop_uid, encoded):
                raise ObjectError(
                    "duplicate-instance", "another object with the same SOP Instance UID but other content "
                    "was already released (to this output, or by this node); find which of the two is right "
                    "at the source (a modality re-using UIDs, or an edited copy) and release only that one",
                    stage="write", path="(0008,0018)")
        except ObjectError as exc:
            return self.quarantine(data, exc)
        except Exception as exc:  # fail closed: an unknown error is a quarantine, never a release
            damaged = deferred_read_error(exc)  # pydicom reading a value deid asked for: no bug
            if damaged is not None:  # (pydicom says a sequence ends early with an OSError)
                return self.quarantine(data, damaged)
            if isinstance(exc, OSError) and stage == "write":
                raise  # the records' disk (the released index), not the object: stop
            return self._quarantine(data, self._internal_error(exc, stage, data))
        return Written(Released.of(result, output, checked.count), encoded)

    def _other_content_released(self, target: Path, output: str, sop_uid: str, encoded: bytes) -> bool:
        """Whether other content already went out under this SOP Instance UID: at this path, or
        anywhere in the index, which otherwise claims the UID for ``encoded`` (before the write: one
        UID never goes out with two contents). The same content again is released again."""
        if target.is_file() and target.read_bytes() != encoded:
            return True  # (also an output made without this index)
        if self.released is None:
            return False
        return not self.released.claim(sop_uid, content_digest(encoded), output, lambda: encoded)

    def quarantine(self, data: bytes, error: ObjectError, *, original: str = "original.dcm",
                   destination: str = "") -> Quarantined:
        """Quarantine an object for ``error``: the pipeline's own reasons and those found after it
        (a ``destination`` refused the object, workers died on it) alike."""
        return self._quarantine(data, error.as_reason(), original=original, destination=destination)

    def _internal_error(self, exc: BaseException, stage: str, data: bytes) -> dict[str, str]:
        """The reason of a bug (deid.errors.internal_error_reason); with debugging on, the full
        traceback also goes to RECORDS/debug/<quarantine entry>.txt (mode 0600), never to a log."""
        written = ""
        if self.debug is not None:
            name = f"{entry_name(data)}.txt"
            text = "".join(traceback.format_exception(exc)).encode("utf-8", "replace")
            write_bytes_atomic(text, make_private_dir(self.debug / DEBUG_FOLDER) / name, mode=0o600)
            written = f"{DEBUG_FOLDER}/{name}"
        return internal_error_reason(exc, stage, debug_file=written)

    def _quarantine_unread(self, source: Path, reason: dict[str, str],
                           shown_as: str | None = None) -> Quarantined:
        """A quarantine entry for a file that was not read: its reason.json names the source
        (``shown_as``, else its path escaped where not UTF-8) so a person can find it; the entry's
        name is keyed, never the path."""
        name = self.key.hexdigest("quarantine-unread", os.fsencode(source))[:24]
        entry = make_private_dir(make_private_dir(self.quarantine_dir) / name)
        text = json.dumps({**reason, "source": shown_as or shown(source)}, indent=2,
                          sort_keys=True).encode() + b"\n"
        write_bytes_atomic(text, entry / "reason.json", mode=0o600)
        return Quarantined.of(reason, entry.name)

    def _quarantine(self, data: bytes, reason: dict[str, str], original: str = "original.dcm",
                    destination: str = "") -> Quarantined:
        """Keep the original and a reason file in the quarantine (a PHI zone, mode 0700)."""
        entry = make_private_dir(self.quarantine_dir) / entry_name(data)
        make_private_dir(entry)
        write_bytes_atomic(data, entry / original, mode=0o600)
        text = json.dumps(reason, indent=2, sort_keys=True).encode() + b"\n"
        write_bytes_atomic(text, entry / "reason.json", mode=0o600)
        return Quarantined.of(reason, entry.name, destination=destination)


def write_released(outcome: Written | Quarantined, out: Path, *,
                   durable: bool = True) -> Written | Quarantined:
    """A written outcome's bytes written to their place under ``out`` (atomically; after the
    pipeline claimed its SOP Instance UID): the outcome without them.  An OSError is the output's
    disk, not the object's: the caller stops, nothing is lost."""
    if not isinstance(outcome, Written) or outcome.data is None:
        return outcome
    write_bytes_atomic(outcome.data, out / outcome.released.output, durable=durable)
    return outcome.without_data()


def entry_name(data: bytes) -> str:
    """The quarantine entry (and debug file) name of an object: a digest of its bytes, no value."""
    return hashlib.sha256(data).hexdigest()[:24]
