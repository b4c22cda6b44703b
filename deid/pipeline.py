"""The one loop step that turns a source file into an outcome; the only place that decides quarantine."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from deid.checks.release import release_check
from deid.engine.deidentifier import Deidentifier
from deid.engine.identity import Originals
from deid.engine.review import HiddenTokens
from deid.errors import ObjectError
from deid.io.paths import output_path
from deid.io.reader import read_object
from deid.io.encoder import encode
from deid.io.writer import write_bytes_atomic
from deid.keys import SecretKey
from deid.profile.model import Profile
from deid.sidecar import SIDECAR_FOLDER, SidecarRewriter, sidecar_kind


@dataclass
class Outcome:
    """What happened to one object.  Holds de-identified values and reason codes only."""

    status: str  # written | quarantined | skipped
    output: str | None = None
    quarantine: str | None = None
    reason: dict[str, str] | None = None
    sop_class_uid: str = ""
    modality: str = ""
    patient_id: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    adjusted: dict[str, int] = field(default_factory=dict)
    # for the audit trail (deid.audit): see deid.engine.review for what is collected
    applied: dict[str, str] = field(default_factory=dict)  # top-level "(gggg,eeee)" -> action (not keep)
    kept_text: dict[str, list[str]] = field(default_factory=dict)  # keyword -> released free text
    flagged_text: list[str] = field(default_factory=list)  # keywords whose kept text names the object's identity
    text_replaced: dict[str, int] = field(default_factory=dict)  # keyword -> identity values replaced in kept text
    references: list[dict] = field(default_factory=list)  # the released object's references
    # ORIGINAL identity, only for the encrypted re-identification map: never logged, not in repr
    originals: Originals = field(default_factory=Originals, repr=False)
    pseudonyms: dict[str, str] = field(default_factory=dict)  # released patient_name, accession_number
    tokens: HiddenTokens = field(default_factory=HiddenTokens, repr=False)  # identity tokens, for the map only
    preexisting_problems: int = 0  # IOD problems the input already had (let through, not added)


def make_private_dir(path: Path) -> Path:
    """A folder for PHI (quarantine, records): created and kept at mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


class Pipeline:
    """read -> rules -> write, with every failure turned into a quarantine entry."""

    def __init__(self, profile: Profile, key: SecretKey, *, out: Path, quarantine: Path,
                 lookup: Mapping[str, str] | None = None, durable: bool = True) -> None:
        self.deidentifier = Deidentifier(profile, key, lookup=lookup)
        self.sidecars = SidecarRewriter(self.deidentifier.uids, key)
        self.out = out
        self.quarantine_dir = quarantine
        self.durable = durable  # False: the caller syncs a batch before recording it (deid run)

    def process_file(self, source: Path) -> Outcome:
        try:
            data = source.read_bytes()
        except OSError as exc:
            reason = ObjectError("unreadable", f"the file cannot be read ({exc.__class__.__name__}); check "
                                 "permissions and the storage", stage="read").as_reason()
            return Outcome("quarantined", reason=reason)
        if sidecar_kind(source.name, data) is not None:
            return self.process_sidecar(source.name, data)
        return self.process_bytes(data)

    def process_sidecar(self, name: str, data: bytes) -> Outcome:
        """A side-car annotation file (deid.sidecar): rewritten into OUT/annotations/, or quarantined."""
        original = "original" + Path(name).suffix.lower()
        try:
            sidecar = self.sidecars.rewrite(name, data)
        except ObjectError as exc:
            return self._quarantine(data, exc.as_reason(), original=original)
        except Exception as exc:  # fail closed
            reason = {"code": "internal-error", "stage": "sidecar", "path": "",
                      "message": f"unexpected {exc.__class__.__name__}; report it to the deid maintainers"}
            return self._quarantine(data, reason, original=original)
        target = self.out / SIDECAR_FOLDER / sidecar.name
        if target.is_file() and target.read_bytes() != sidecar.data:  # never overwrite another annotation
            reason = ObjectError(
                "sidecar-name-collision", "another side-car for the same image was already released under "
                f"{SIDECAR_FOLDER}/{sidecar.name}; merge the two files, or release this one into another "
                "output folder", stage="write").as_reason()
            return self._quarantine(data, reason, original=original)
        write_bytes_atomic(sidecar.data, target, durable=self.durable)
        return Outcome("written", output=str(target.relative_to(self.out)),
                       counts={f"sidecar_{sidecar.kind}": 1, "remap_uid": sidecar.uids})

    def process_bytes(self, data: bytes) -> Outcome:
        try:
            ds = read_object(data)
            result = self.deidentifier.deidentify(ds)
            encoded = encode(result.dataset)
            checked = release_check(self.deidentifier.profile, data, result.dataset, result.sop_class_uid,
                                    encoded)
        except ObjectError as exc:
            return self._quarantine(data, exc.as_reason())
        except Exception as exc:  # fail closed: an unknown error is a quarantine, never a release
            reason = {"code": "internal-error", "stage": "rules", "path": "",
                      "message": f"unexpected {exc.__class__.__name__}; report it to the deid maintainers"}
            return self._quarantine(data, reason)
        target = output_path(self.out, result.patient_id, result.study_uid, result.series_uid, result.sop_uid)
        if target.is_file() and target.read_bytes() != encoded:  # the same object again is an overwrite
            reason = ObjectError(
                "duplicate-instance", "another object with the same SOP Instance UID but other content was "
                "already released to this output; find which of the two is right at the source (a "
                "modality re-using UIDs, or an edited copy) and release only that one", stage="write",
                path="(0008,0018)").as_reason()
            return self._quarantine(data, reason)
        write_bytes_atomic(encoded, target, durable=self.durable)
        return Outcome(
            "written", output=str(target.relative_to(self.out)), sop_class_uid=result.sop_class_uid,
            modality=result.modality, patient_id=result.patient_id, study_uid=result.study_uid,
            series_uid=result.series_uid, sop_uid=result.sop_uid, counts=dict(result.counts),
            adjusted=dict(result.adjusted), applied=result.applied, kept_text=result.kept_text,
            flagged_text=result.flagged_text, text_replaced=result.text_replaced, tokens=result.tokens,
            originals=result.originals, pseudonyms=result.pseudonyms,
            references=result.references, preexisting_problems=checked.count,
        )

    def quarantine_bytes(self, data: bytes, reason: dict[str, str]) -> Outcome:
        """Quarantine an object for a reason found after the rules (e.g. a destination refused it)."""
        return self._quarantine(data, reason)

    def _quarantine(self, data: bytes, reason: dict[str, str], original: str = "original.dcm") -> Outcome:
        """Keep the original and a reason file in the quarantine (a PHI zone, mode 0700)."""
        entry = make_private_dir(self.quarantine_dir) / hashlib.sha256(data).hexdigest()[:24]
        make_private_dir(entry)
        write_bytes_atomic(data, entry / original, mode=0o600)
        text = json.dumps(reason, indent=2, sort_keys=True).encode() + b"\n"
        write_bytes_atomic(text, entry / "reason.json", mode=0o600)
        return Outcome("quarantined", quarantine=entry.name, reason=reason)

