"""One audit record: the schema of an audit line, in code.

An :class:`AuditRecord` is made once from an outcome (:meth:`AuditRecord.of`), written by the
trail as one JSON line (:meth:`to_json`) and read back by the report and verify
(:meth:`from_json`), field by field with their types, never by pattern.  Lines written before
``version`` existed (version 1) have the same fields and read the same; a field missing or of
the wrong shape reads as empty, so a damaged line counts as what it still says.  Lines of
``deid reidentify`` queries (``"outcome": "reidentify-query"``) read as records with only their
time, source and outcome.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from deid.outcome import (
    Forwarded,
    Outcome,
    Quarantined,
    Released,
    Retry,
    Skipped,
    Written,
    released,
)

VERSION = 2  # 1: lines without a "version" field (the same fields)


class Event(StrEnum):
    """What an audit line records (its ``outcome`` field)."""

    WRITTEN = "written"
    FORWARDED = "forwarded"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"
    RETRYING = "retrying"
    REIDENTIFY_QUERY = "reidentify-query"


#: the fields that hold one string each
_TEXTS = ("time", "run_id", "source", "key_fingerprint", "sop_class_uid", "modality", "patient_id",
          "study_uid", "series_uid", "sop_uid")

#: events of an object that was released (the report counts its object once)
RELEASED_EVENTS = frozenset({Event.WRITTEN, Event.FORWARDED, Event.SKIPPED})


def event_of(outcome: Outcome) -> Event:
    """The audit event an outcome is."""
    match outcome:
        case Written():
            return Event.WRITTEN
        case Forwarded():
            return Event.FORWARDED
        case Skipped():
            return Event.SKIPPED
        case Quarantined():
            return Event.QUARANTINED
        case Retry():
            return Event.RETRYING
    raise TypeError(f"not an outcome: {type(outcome).__name__}")


@dataclass(frozen=True)
class AuditRecord:
    """One audit line: released values and counts only, never an original value."""

    outcome: str  # an Event (a line of another writer may hold another word)
    time: str = ""
    run_id: str = ""
    source: str = ""  # run | serve | reidentify
    reason: str | None = None  # quarantined: the reason code (deid.audit.reasons)
    reason_detail: Mapping[str, str] | None = None  # quarantined: stage, path, message
    destination: str | None = None  # forwarded, retrying, refused: the destination
    profile: Mapping[str, str] = field(default_factory=dict)  # name, version, sha256
    key_fingerprint: str = ""
    sop_class_uid: str = ""
    modality: str = ""
    patient_id: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    output: str | None = None  # relative path under the output
    quarantine: str | None = None  # the quarantine entry
    actions: Mapping[str, int] = field(default_factory=dict)
    adjusted: Mapping[str, int] = field(default_factory=dict)
    applied: Mapping[str, str] = field(default_factory=dict)
    kept_text: Mapping[str, list[str]] = field(default_factory=dict)
    flagged_text: tuple[str, ...] = ()
    text_replaced: Mapping[str, int] = field(default_factory=dict)
    references: tuple[Mapping[str, Any], ...] = ()
    pixels: Mapping[str, Any] = field(default_factory=dict)  # burned-in text blanked (when any)
    version: int = VERSION

    @classmethod
    def of(cls, outcome: Outcome, *, time: str, run_id: str, source: str,
           profile: Mapping[str, str], key_fingerprint: str) -> AuditRecord:
        """The record of an outcome: its released object's values, or its quarantine's reason."""
        common: dict[str, Any] = {"outcome": str(event_of(outcome)), "time": time, "run_id": run_id,
                                  "source": source, "profile": profile,
                                  "key_fingerprint": key_fingerprint}
        if isinstance(outcome, Quarantined):
            detail = {"stage": outcome.stage, "path": outcome.path, "message": outcome.message}
            return cls(**common, reason=outcome.code, reason_detail=detail,
                       destination=outcome.destination or None, quarantine=outcome.entry)
        destination = getattr(outcome, "destination", "") or None
        quarantine = outcome.quarantine if isinstance(outcome, Skipped) else None
        facts = released(outcome)
        if facts is None:
            return cls(**common, destination=destination, quarantine=quarantine)
        return cls(**common, **_released_fields(facts), destination=destination, quarantine=quarantine)

    @property
    def event(self) -> Event | None:
        """The line's event, or None for a word no writer of this version uses."""
        try:
            return Event(self.outcome)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        """The line as plain JSON data (field order as declared)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("profile", "actions", "adjusted", "applied", "kept_text", "text_replaced"):
            data[name] = dict(data[name])
        if self.reason_detail is not None:
            data["reason_detail"] = dict(self.reason_detail)
        data["flagged_text"] = list(self.flagged_text)
        data["references"] = [dict(ref) for ref in self.references]
        if self.pixels:
            data["pixels"] = dict(self.pixels)
        else:
            del data["pixels"]  # only objects whose pixels were read carry it
        return data

    def to_json(self) -> str:
        """The line's text (one line of JSON, UTF-8, no newline)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_NON_STR_KEYS).decode("utf-8")

    @classmethod
    def from_json(cls, text: str) -> AuditRecord | None:
        """The record a line holds; None when it holds no JSON object (e.g. a line cut by a crash)."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return cls.from_dict(data) if isinstance(data, dict) else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """The record of parsed line data, each field read as its type (wrong shapes: empty)."""
        reason = data.get("reason")
        if isinstance(reason, dict):  # an early writer kept the whole reason here
            reason = reason.get("code")
        detail = data.get("reason_detail")
        version = data.get("version")
        texts = [data.get(name, "") for name in _TEXTS]
        if not set(map(type, texts)) <= {str}:  # the lines deid writes hold strings (checked in C)
            texts = [_text(value) for value in texts]
        return cls(
            **dict(zip(_TEXTS, texts)), outcome=_text(data.get("outcome")) or "unknown",
            reason=_text(reason) if reason is not None else None,
            reason_detail=_strings(detail) if isinstance(detail, dict) else None,
            destination=_optional(data.get("destination")), profile=_strings(data.get("profile")),
            output=_optional(data.get("output")), quarantine=_optional(data.get("quarantine")),
            actions=_counts(data.get("actions")), adjusted=_counts(data.get("adjusted")),
            applied=_strings(data.get("applied")), kept_text=_kept(data.get("kept_text")),
            flagged_text=tuple(k for k in _list(data.get("flagged_text")) if isinstance(k, str)),
            text_replaced=_counts(data.get("text_replaced")),
            references=tuple(r for r in _list(data.get("references")) if isinstance(r, dict)),
            pixels=data["pixels"] if isinstance(data.get("pixels"), dict) else {},
            version=version if isinstance(version, int) and not isinstance(version, bool) else 1,
        )


def _released_fields(facts: Released) -> dict[str, Any]:
    return {
        "sop_class_uid": facts.sop_class_uid, "modality": facts.modality,
        "patient_id": facts.patient_id, "study_uid": facts.study_uid,
        "series_uid": facts.series_uid, "sop_uid": facts.sop_uid, "output": facts.output,
        "actions": dict(facts.counts), "adjusted": dict(facts.adjusted), "applied": facts.applied,
        "kept_text": facts.kept_text, "flagged_text": facts.flagged_text,
        "text_replaced": facts.text_replaced, "references": facts.references,
        "pixels": facts.pixels,
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> dict[str, str]:
    """A JSON object of strings (keys of a JSON object always are): other values as text."""
    if not isinstance(value, dict):
        return {}
    if set(map(type, value.values())) <= {str}:  # the lines deid writes (checked in C, fast)
        return value
    return {k: _text(v) for k, v in value.items()}


def _counts(value: Any) -> dict[str, int]:
    """A JSON object of counts: entries that are no integer are left out."""
    if not isinstance(value, dict):
        return {}
    if set(map(type, value.values())) <= {int}:
        return value
    return {k: v for k, v in value.items() if type(v) is int}


def _kept(value: Any) -> dict[str, list[str]]:
    """Kept text: attribute -> values (a lone string is one value)."""
    if not isinstance(value, dict):
        return {}
    if set(map(type, value.values())) <= {list} and all(
            set(map(type, values)) <= {str} for values in value.values()):
        return value  # the lines deid writes
    kept = {}
    for attribute, values in value.items():
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list):
            kept[_text(attribute)] = [_text(v) for v in values]
    return kept
