"""What became of one object: one of a closed set of outcomes, never a string.

:class:`Written` (released bytes made), :class:`Forwarded` (a destination has them),
:class:`Skipped` (a previous run finished it), :class:`Quarantined` (the original kept with a
reason) and :class:`Retry` (kept in the spool for a later attempt).  Everything known about a
released object travels in one :class:`Released`, made once from the engine's result; the audit
record (:mod:`deid.audit.record`), the run's summary and journal, and the node's settlement all
read it from there.  Match on the type (``match``/``isinstance``), never on a name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deid.engine.identity import Originals
from deid.engine.review import HiddenTokens

if TYPE_CHECKING:
    from deid.engine.deidentifier import Result


@dataclass(frozen=True)
class Released:
    """The facts of one released object: released values and counts only, except ``originals``
    and ``tokens`` (the original identity, for the encrypted re-identification map: hidden from
    ``repr``, never logged or written in clear)."""

    output: str  # the object's place under the output (relative path)
    sop_class_uid: str = ""
    modality: str = ""
    patient_id: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)  # action -> times applied
    adjusted: Mapping[str, int] = field(default_factory=dict)  # removals kept empty/dummy for the IOD
    applied: Mapping[str, str] = field(default_factory=dict)  # top-level "(gggg,eeee)" -> action (not keep)
    kept_text: Mapping[str, list[str]] = field(default_factory=dict)  # keyword -> released free text
    flagged_text: tuple[str, ...] = ()  # keywords whose kept text names the object's identity
    text_replaced: Mapping[str, int] = field(default_factory=dict)  # keyword -> identity values replaced
    references: tuple[dict, ...] = ()  # the released object's references (deid.audit.references)
    pseudonyms: Mapping[str, str] = field(default_factory=dict)  # released patient_name, accession_number
    preexisting_problems: int = 0  # IOD problems the input already had (let through, not added)
    pixels: Mapping[str, Any] = field(default_factory=dict)  # burned-in text (deid.engine.burned_in)
    originals: Originals = field(default_factory=Originals, repr=False, compare=False)
    tokens: HiddenTokens = field(default_factory=HiddenTokens, repr=False, compare=False)

    @classmethod
    def of(cls, result: Result, output: str, preexisting_problems: int = 0) -> Released:
        """The facts of an object the engine de-identified (its :class:`Result`), released at
        ``output``."""
        return cls(
            output=output, sop_class_uid=result.sop_class_uid, modality=result.modality,
            patient_id=result.patient_id, study_uid=result.study_uid, series_uid=result.series_uid,
            sop_uid=result.sop_uid, counts=dict(result.counts), adjusted=dict(result.adjusted),
            applied=result.applied, kept_text=result.kept_text,
            flagged_text=tuple(result.flagged_text), text_replaced=result.text_replaced,
            references=tuple(result.references), pseudonyms=result.pseudonyms,
            preexisting_problems=preexisting_problems, pixels=result.pixels,
            originals=result.originals,
            tokens=result.tokens,
        )


@dataclass(frozen=True)
class Written:
    """The object was de-identified: ``data`` holds the released bytes until they went out
    (written under the output, or sent); ``released`` what is known about them."""

    released: Released
    data: bytes | None = field(default=None, repr=False, compare=False)

    def without_data(self) -> Written:
        """This outcome once its bytes went out (cheap to hand to another process)."""
        return dataclasses.replace(self, data=None)


@dataclass(frozen=True)
class Forwarded:
    """``destination`` has the released object.  Without a destination: the node's settlement of
    an item every destination now has (its original goes); ``released`` is then set when the
    object was de-identified in this attempt."""

    released: Released | None = None
    destination: str = ""


@dataclass(frozen=True)
class Skipped:
    """A previous run finished this source: released as ``released`` (from its journal entry), or
    quarantined in ``quarantine``."""

    released: Released | None = None
    quarantine: str | None = None


@dataclass(frozen=True)
class Quarantined:
    """The original went to the quarantine entry ``entry`` (None: it could not be read, nothing
    was kept) for the reason ``code`` (deid.audit.reasons), found at ``stage`` and element ``path``
    (tags only), told in ``message`` (our words, never a value).  ``details``: more facts of an
    internal error (exception type, where raised, debug file); ``destination``: the destination
    that refused the object, when one did."""

    code: str
    stage: str = ""
    path: str = ""
    entry: str | None = None
    message: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    destination: str = ""

    @classmethod
    def of(cls, reason: Mapping[str, str], entry: str | None = None, *,
           destination: str = "") -> Quarantined:
        """The outcome of a quarantine for ``reason`` (``ObjectError.as_reason``, or
        ``deid.errors.internal_error_reason``)."""
        main = ("code", "stage", "path", "message")
        return cls(reason.get("code") or "internal-error", reason.get("stage", ""),
                   reason.get("path", ""), entry, reason.get("message", ""),
                   {k: v for k, v in reason.items() if k not in main}, destination)

    def reason(self) -> dict[str, str]:
        """The reason as the quarantine's reason.json holds it."""
        return {"code": self.code, "stage": self.stage, "path": self.path, "message": self.message,
                **self.details}


@dataclass(frozen=True)
class Retry:
    """The original stays in the spool for a later attempt; ``reason`` says why (a code).  With a
    ``destination``: that destination deferred the released object (``released``).  Without: the
    node's settlement of the item; ``released`` is set when it was de-identified in this attempt."""

    reason: str
    destination: str = ""
    released: Released | None = None


Outcome = Written | Forwarded | Skipped | Quarantined | Retry


def released(outcome: Outcome) -> Released | None:
    """The released object an outcome is about, if any."""
    match outcome:
        case Written(released=facts) | Forwarded(released=facts) | Skipped(released=facts):
            return facts
        case Retry(released=facts):
            return facts
    return None
