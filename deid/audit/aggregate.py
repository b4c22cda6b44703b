"""Streamed aggregation of audit lines into the figures of a report, in bounded memory.

Two passes over ``<records>/audit/*.jsonl``, each line read as an
:class:`~deid.audit.record.AuditRecord`: the first counts (lines are never all held), the second
checks the references of released objects against the set of released objects (it reads again
only the lines that hold references, noted by the first).  Memory grows with
the number of distinct released objects (one small integer each, for the reference check) and of
series, studies and patients (capped by ``Limits``), never with the number of lines; lists of
distinct values are capped while their occurrences are still counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deid.audit.record import RELEASED_EVENTS, AuditRecord, Event
from deid.audit.references import Reference, dangling

if TYPE_CHECKING:
    from deid.audit.reid import StudyTokens

AUDIT_FOLDER = "audit"
RELEASED_OUTCOMES = frozenset(str(event) for event in RELEASED_EVENTS)
_APPLIED_BLOCKS = 10_000  # distinct "applied" blocks counted whole; their pairs are counted at the end
_CLASS_BITS = 12  # a released object is packed as (first line number << 12) | SOP class number
_OTHER_CLASS = (1 << _CLASS_BITS) - 1  # past 4095 SOP classes: the class is not compared


@dataclass(frozen=True)
class Limits:
    """Caps on what is listed one by one (everything is still counted)."""

    values_per_attribute: int = 2000   # distinct kept values listed per attribute
    values_total: int = 50_000         # distinct kept values listed over all attributes
    value_chars: int = 1000            # a longer kept value is cut (and marked) in the report
    flagged_values: int = 20000        # flagged values are listed beyond values_per_attribute
    entities: int = 200_000            # patients, studies, series tracked one by one
    dangling_listed: int = 5000        # dangling references listed one by one
    runs: int = 1000
    attributes: int = 20000            # distinct (tag, action) pairs
    pixel_objects: int = 500           # objects with blanked burned-in text listed (thumbnails)


def audit_files(records: Path) -> list[Path]:
    """Every audit file of a records folder, in a stable order."""
    return sorted((Path(records) / AUDIT_FOLDER).glob("*.jsonl"))


@dataclass
class ValueCount:
    """How often one kept value went out, and in how many objects it was flagged."""

    objects: int = 0
    flagged: int = 0


@dataclass
class Aggregate:
    """Everything a report shows, counted from the lines."""

    files: int = 0
    lines: int = 0
    bad_lines: int = 0
    objects: int = 0  # distinct released objects
    annotations: int = 0  # distinct released side-car files (lines with an output, no SOP UID)
    outcomes: Counter[str] = field(default_factory=Counter)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs_untracked: int = 0
    modalities: Counter[str] = field(default_factory=Counter)
    sop_classes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    attributes: Counter[tuple[str, str]] = field(default_factory=Counter)
    attributes_untracked: int = 0
    patients: dict[str, list[int]] = field(default_factory=dict)  # id -> [studies, series, objects]
    studies: dict[str, list[Any]] = field(default_factory=dict)   # uid -> [patient, series, objects, modalities]
    series: dict[str, list[Any]] = field(default_factory=dict)    # uid -> [study, modality, class, objects]
    entities_untracked: int = 0  # objects whose patient/study/series was past the cap
    review: dict[str, dict[str, ValueCount]] = field(default_factory=dict)
    review_unlisted: Counter[str] = field(default_factory=Counter)  # attribute -> occurrences not listed
    flagged_objects: int = 0
    cross_flagged_objects: int = 0  # objects whose kept text names an identity of another object (key needed)
    text_replaced: Counter[str] = field(default_factory=Counter)  # attribute -> identity values replaced
    replaced_objects: Counter[str] = field(default_factory=Counter)  # attribute -> objects with a replacement
    tokens_checked: bool = False  # whether the map's tokens were used (deid report --key-file)
    dangling: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # study -> listed refs
    dangling_counts: Counter[str] = field(default_factory=Counter)             # study -> all refs
    references_checked: int = 0
    pixels: list[dict[str, Any]] = field(default_factory=list)  # objects whose pixels were blanked or read
    pixel_totals: Counter[str] = field(default_factory=Counter)  # objects, regions, read, kept_objects


class Aggregator:
    """Reads a records folder and builds its :class:`Aggregate`."""

    def __init__(self, limits: Limits | None = None, tokens: StudyTokens | None = None) -> None:
        self.limits = limits or Limits()
        self.result = Aggregate(tokens_checked=tokens is not None)
        self.tokens = tokens  # identity tokens by released study/patient (from the encrypted map)
        self._released: dict[int, int] = {}  # hash(sop uid) -> packed (first line, class number)
        self._classes: dict[str, int] = {}
        self._class_names: list[str] = []
        self._flagged_listed = 0
        self._values_listed = 0
        self._dangling_listed = 0
        self._blocks: dict[tuple[tuple[str, str], ...], int] = {}  # "applied" block -> objects
        self._annotations: set[int] = set()  # hash(output path) of the side-car files counted

    # -- reading ---------------------------------------------------------------------------
    def _lines(self, records: Path, *, count: bool) -> Iterator[tuple[int, str]]:
        number = 0
        for path in audit_files(records):
            if count:
                self.result.files += 1
            with open(path, encoding="utf-8", errors="replace") as handle:
                for text in handle:
                    if text.strip():
                        yield number, text
                        number += 1

    def read(self, records: Path) -> Aggregate:
        """Both passes over ``records``; returns the aggregate."""
        referring: set[int] = set()  # lines of released objects that hold references
        for number, text in self._lines(records, count=True):
            self.result.lines += 1
            record = AuditRecord.from_json(text)
            if record is None:
                self.result.bad_lines += 1
                continue
            if self.add(number, record) and record.references:
                referring.add(number)
        for block, count in self._blocks.items():
            self._count_applied(block, count)
        self._blocks.clear()
        for number, text in self._lines(records, count=False):
            if number in referring:
                record = AuditRecord.from_json(text)
                if record is not None:
                    self.check_references(number, record)
        return self.result

    # -- pass 1: counts --------------------------------------------------------------------
    def add(self, number: int, line: AuditRecord) -> bool:
        """Count one line; whether it is the first line of a released object."""
        r = self.result
        outcome = line.outcome
        r.outcomes[outcome] += 1
        self._run(line)
        if line.event is Event.QUARANTINED:
            r.reasons[line.reason or "unknown"] += 1
            return False
        released = line.event in RELEASED_EVENTS
        if not released or not line.sop_uid:
            if released and line.output:  # a side-car annotation file
                run = r.runs.get(line.run_id)
                if run is not None:
                    run["annotations"] += 1
                if hash(line.output) not in self._annotations:
                    self._annotations.add(hash(line.output))
                    r.annotations += 1
            return False
        key = hash(line.sop_uid)
        if key in self._released:
            return False  # the same object again (a re-run's skip, a forward after the write)
        sop_class = line.sop_class_uid
        class_number = self._classes.get(sop_class, -1)
        if class_number < 0:
            class_number = min(len(self._class_names), _OTHER_CLASS)
            if class_number < _OTHER_CLASS:
                self._classes[sop_class] = class_number
                self._class_names.append(sop_class)
        self._released[key] = (number << _CLASS_BITS) | class_number
        r.objects += 1
        r.modalities[line.modality] += 1
        r.sop_classes[sop_class] += 1
        self._entities(line)
        r.actions.update(line.actions)
        block = tuple(line.applied.items())  # (tag, action) pairs: most objects share a few blocks
        if block in self._blocks or len(self._blocks) < _APPLIED_BLOCKS:
            self._blocks[block] = self._blocks.get(block, 0) + 1
        else:
            self._count_applied(block, 1)
        self._review(line)
        self._pixels(line)
        return True

    def _pixels(self, line: AuditRecord) -> None:
        """An object whose burned-in text was blanked or read: counted, and listed (capped)."""
        pixels = line.pixels
        if not pixels:
            return
        totals, number = self.result.pixel_totals, lambda key: _count(pixels.get(key))
        totals["objects"] += 1
        totals["regions"] += number("regions")
        totals["read"] += pixels.get("read") is True
        totals["kept_objects"] += number("words_kept") > 0
        if len(self.result.pixels) < self.limits.pixel_objects:
            self.result.pixels.append({
                "sop_uid": line.sop_uid, "modality": line.modality, "regions": number("regions"),
                "words_found": number("words_found"), "words_kept": number("words_kept"),
                "frames_read": number("frames_read"), "transfer_syntax": _text(pixels.get("transfer_syntax")),
                "thumbnails": [t for t in pixels.get("thumbnails") or () if isinstance(t, str)],
                "kept_thumbnails": [t for t in pixels.get("kept_thumbnails") or () if isinstance(t, str)],
            })

    def _count_applied(self, pairs: tuple[tuple[str, str], ...], count: int) -> None:
        """Count the (tag, action) pairs of one "applied" block ``count`` times."""
        r = self.result
        for pair in pairs:
            if pair in r.attributes or len(r.attributes) < self.limits.attributes:
                r.attributes[pair] += count
            else:
                r.attributes_untracked += count

    def _run(self, line: AuditRecord) -> None:
        run = self.result.runs.get(line.run_id)
        if run is None:
            if len(self.result.runs) >= self.limits.runs:
                self.result.runs_untracked += 1
                return
            profile = line.profile
            run = self.result.runs[line.run_id] = {
                "run_id": line.run_id, "source": line.source, "first": "", "last": "",
                "profile": " ".join(profile.get(k, "") for k in ("name", "version")).strip(),
                "profile_sha256": profile.get("sha256", ""), "outcomes": Counter(),
                "annotations": 0,
            }
        time = line.time
        if time and (not run["first"] or time < run["first"]):
            run["first"] = time
        run["last"] = max(run["last"], time)
        run["outcomes"][line.outcome] += 1

    def _entities(self, line: AuditRecord) -> None:
        r, cap = self.result, self.limits.entities
        patient, study, series = line.patient_id, line.study_uid, line.series_uid
        modality, sop_class = line.modality, line.sop_class_uid
        tracked = len(r.patients) + len(r.studies) + len(r.series)
        if (patient not in r.patients or study not in r.studies or series not in r.series) and tracked >= cap:
            r.entities_untracked += 1
            return
        if patient not in r.patients:
            r.patients[patient] = [0, 0, 0]
        if study not in r.studies:
            r.studies[study] = [patient, 0, 0, set()]
            r.patients[patient][0] += 1
        if series not in r.series:
            r.series[series] = [study, modality, sop_class, 0]
            r.studies[study][1] += 1
            r.patients[patient][1] += 1
        r.patients[patient][2] += 1
        r.studies[study][2] += 1
        r.studies[study][3].add(modality)
        r.series[series][3] += 1

    def _review(self, line: AuditRecord) -> None:
        r, limits = self.result, self.limits
        for attribute, replaced in line.text_replaced.items():
            if replaced > 0:
                r.text_replaced[attribute] += replaced
                r.replaced_objects[attribute] += 1
        flagged = set(line.flagged_text)
        kept = line.kept_text
        names = None
        if self.tokens is not None and kept:
            names = self.tokens.finder(line.patient_id, line.study_uid)
        crossed = False
        if flagged:
            r.flagged_objects += 1
        for attribute, values in kept.items():
            listed = r.review.setdefault(attribute, {})
            for full in dict.fromkeys(values):
                value = _cut(full, limits.value_chars)
                is_flagged = attribute in flagged
                if names is not None and names(full):  # an identity seen in another object
                    is_flagged = crossed = True
                count = listed.get(value)
                if count is None:
                    room = (len(listed) < limits.values_per_attribute
                            and self._values_listed < limits.values_total)
                    if not room and not (is_flagged and self._flagged_listed < limits.flagged_values):
                        r.review_unlisted[attribute] += 1
                        continue
                    count = listed[value] = ValueCount()
                    self._values_listed += 1
                    self._flagged_listed += is_flagged
                count.objects += 1
                if is_flagged:
                    count.flagged += 1
        if crossed:
            r.cross_flagged_objects += 1
            if not flagged:
                r.flagged_objects += 1

    # -- pass 2: references ----------------------------------------------------------------
    def check_references(self, number: int, line: AuditRecord) -> None:
        """List the instance references of a released object that point at no released object."""
        sop_uid = line.sop_uid
        packed = self._released.get(hash(sop_uid)) if sop_uid else None
        if packed is None or packed >> _CLASS_BITS != number:
            return  # not released, or not this object's first line
        r = self.result
        study = line.study_uid
        refs = list(line.references)
        r.references_checked += len(refs)
        for ref, problem in dangling_references(refs, self._lookup):
            r.dangling_counts[study] += 1
            if self._dangling_listed < self.limits.dangling_listed:
                self._dangling_listed += 1
                r.dangling.setdefault(study, []).append({
                    "study_uid": study, "sop_uid": sop_uid, "modality": line.modality,
                    "kind": _text(ref.get("kind")), "uid": _text(ref.get("uid")),
                    "sop_class_uid": _text(ref.get("sop_class_uid")), "path": _text(ref.get("path")),
                    "problem": problem,
                })

    def _lookup(self, uid: str) -> str | None:
        """The SOP class of a released object, or None when no object with that UID was released."""
        packed = self._released.get(hash(uid))
        if packed is None:
            return None
        number = packed & _OTHER_CLASS
        return "" if number == _OTHER_CLASS else self._class_names[number]


def dangling_references(refs: list[Mapping[str, Any]], released_class: Any) -> list[tuple[Mapping[str, Any], str]]:
    """The instance references (dicts, as in audit lines) that point at no released object, or at one
    of another SOP class (``deid.audit.references.dangling``), each with the problem found."""
    released = _Released(released_class)
    found = []
    for ref in refs:
        reference = Reference(**{k: _text(ref.get(k)) for k in ("kind", "uid", "sop_class_uid", "path")})
        if dangling([reference], released):
            found.append((ref, "not released" if released.get(reference.uid) is None else "SOP class differs"))
    return found


class _Released:
    """The released objects (SOP Instance UID -> SOP Class UID) as ``dangling`` reads them."""

    def __init__(self, lookup: Any) -> None:
        self._lookup = lookup

    def get(self, uid: str, default: str | None = None) -> str | None:
        found = self._lookup(uid)
        return default if found is None else found


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _cut(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… [{len(value) - limit} more characters]"


def aggregate(records: Path, limits: Limits | None = None, tokens: StudyTokens | None = None) -> Aggregate:
    """The aggregate of every audit line in a records folder; with ``tokens`` (from the encrypted
    map, ``deid.audit.reid.read_tokens``) kept text naming an identity of another object of the same
    patient or study is flagged too."""
    return Aggregator(limits, tokens).read(Path(records))
