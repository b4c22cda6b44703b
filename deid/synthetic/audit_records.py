"""Audit record lines (interface C) of a made-up release, for report tests and the report benchmark.

The lines look like those ``deid run`` writes: released identifiers computed with a fixed key by the
real identity and UID code, per-attribute actions from the VGHTPE profile applied to builder objects,
kept free text, references of the RT Structure Set to its CT images, and quarantined objects with
their released fields empty.  No original value appears in a line, except where a test asks for a
kept text that names the patient (``flag_every``): that is the leak the report's review must show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

from deid.synthetic.ct import PHASE_SERIES
from deid.synthetic.identity import PHASES, SyntheticPatient, make_patient
from deid.synthetic.modules import STUDY_DESCRIPTION
from deid.synthetic.uids import instance_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: The key the builder's released values are computed with (the test suite's ``key`` fixture).
BUILDER_KEY = bytes(range(32))
PROFILE = {"name": "vghtpe", "version": "1", "sha256": "0" * 64}
_START = datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Released:
    """The released identifiers of one patient's study (what a run of the VGHTPE profile gives)."""

    patient_id: str
    case_number: str
    study_uid: str
    frame_of_reference_uid: str

    def series(self, patient: SyntheticPatient, label: str) -> str:
        return _remap(patient.series_uid(label))

    def instance(self, patient: SyntheticPatient, label: str, index: int) -> str:
        return _remap(instance_uid(patient.series_uid(label), index))


@cache
def _tools() -> tuple[object, object]:
    from deid.engine.identity import Identity
    from deid.engine.uids import UidRemapper
    from deid.keys import SecretKey

    key = SecretKey(BUILDER_KEY)
    return Identity(key, lookup=None, case_digits=10), UidRemapper(key)


def _remap(uid: str) -> str:
    return _tools()[1].remap(uid)  # type: ignore[attr-defined]


def released(patient: SyntheticPatient) -> Released:
    """The released identifiers of ``patient`` (keyed with :data:`BUILDER_KEY`)."""
    identity = _tools()[0]
    return Released(
        patient_id=identity.hashed("(0010,0020)", patient.patient_id, 32),  # type: ignore[attr-defined]
        case_number=identity.case_number(patient.patient_id),  # type: ignore[attr-defined]
        study_uid=_remap(patient.study_instance_uid),
        frame_of_reference_uid=_remap(patient.frame_of_reference_uid),
    )


@cache
def profile_effect(sop_class_uid: str) -> tuple[dict[str, str], dict[str, int]]:
    """(applied, actions) of the VGHTPE profile on one builder object of the SOP class: the action
    on each top-level element (but keep), and how often each action was applied at any depth."""
    from deid.engine.deidentifier import Deidentifier
    from deid.keys import SecretKey
    from deid.profile.loader import load_profile
    from deid.synthetic.ct import four_phase_ct
    from deid.synthetic.rtss import rtss
    from deid.synthetic.sc import secondary_capture_image

    patient = make_patient(0)
    if sop_class_uid == SECONDARY_CAPTURE:
        ds = secondary_capture_image(patient, burned_in="NO", size=16)
    else:
        images = four_phase_ct(patient, slices=2, size=16)["P"]
        ds = rtss(patient, images) if sop_class_uid == RT_STRUCTURE_SET else images[0]
    result = Deidentifier(load_profile("vghtpe"), SecretKey(BUILDER_KEY)).deidentify(ds)
    return dict(result.applied), dict(sorted(result.counts.items()))


def audit_line(*, outcome: str = "written", time: datetime = _START, run_id: str = "0123456789ab",
               source: str = "run", reason: str | None = None, destination: str | None = None,
               sop_class_uid: str = CT_IMAGE, modality: str = "CT", patient_id: str = "",
               study_uid: str = "", series_uid: str = "", sop_uid: str = "",
               kept_text: dict[str, list[str]] | None = None, flagged_text: Iterable[str] = (),
               references: list[dict[str, str]] | None = None) -> dict[str, object]:
    """One audit line (interface C); a quarantined line has its released fields empty."""
    released_object = outcome != "quarantined"
    applied, actions = profile_effect(sop_class_uid) if released_object else ({}, {})
    output = (f"{patient_id}/{study_uid}/{series_uid}/{sop_uid}.dcm"
              if outcome == "written" else None)
    return {
        "time": time.isoformat().replace("+00:00", "Z"), "run_id": run_id, "source": source,
        "outcome": outcome, "reason": reason, "destination": destination, "profile": dict(PROFILE),
        "sop_class_uid": sop_class_uid if released_object else "",
        "modality": modality if released_object else "",
        "patient_id": patient_id if released_object else "",
        "study_uid": study_uid if released_object else "",
        "series_uid": series_uid if released_object else "",
        "sop_uid": sop_uid if released_object else "",
        "output": output,
        "actions": dict(actions), "applied": dict(applied),
        "kept_text": {k: list(v) for k, v in (kept_text or {}).items()} if released_object else {},
        "flagged_text": list(flagged_text) if released_object else [],
        "references": list(references or []) if released_object else [],
    }


def patient_lines(index: int, *, slices: int = 4, run_id: str = "0123456789ab",
                  quarantine_referenced: bool = False, flag: bool = False,
                  screenshot: bool = True, start: datetime = _START) -> Iterator[dict[str, object]]:
    """The audit lines of one patient's release: a four-phase CT, an RTSS on the portal phase and
    (``screenshot``) a Secondary Capture quarantined for burned-in annotation risk.

    ``quarantine_referenced``: the RTSS's first referenced CT image was quarantined
    (``unreadable``), so the RTSS holds a dangling reference.  ``flag``: the RTSS's Structure Set
    Label names the patient (flagged), as a kept free text that leaked would."""
    patient = make_patient(index)
    ids = released(patient)
    clock = iter(range(10**9))

    def at() -> datetime:
        return start + timedelta(milliseconds=37 * next(clock) + index)

    common = {"run_id": run_id, "patient_id": ids.patient_id, "study_uid": ids.study_uid}
    for phase in PHASES:
        description = PHASE_SERIES[phase][0]
        series = ids.series(patient, phase)
        for i in range(slices):
            kept = {"StudyDescription": [STUDY_DESCRIPTION], "SeriesDescription": [description],
                    "BodyPartExamined": ["ABDOMEN"], "ImageComments": ["IV contrast"]}
            if phase == "P" and i == 0 and quarantine_referenced:
                yield audit_line(outcome="quarantined", reason="unreadable", time=at(), run_id=run_id)
                continue
            yield audit_line(time=at(), modality="CT", series_uid=series,
                             sop_uid=ids.instance(patient, phase, i), kept_text=kept, **common)
    ct_refs = [{"kind": "instance", "uid": ids.instance(patient, "P", i), "sop_class_uid": CT_IMAGE,
                "path": f"(3006,0010)[0].(3006,0012)[0].(3006,0014)[0].(3006,0016)[{i}]"}
               for i in range(slices)]
    refs = [{"kind": "frame_of_reference", "uid": ids.frame_of_reference_uid, "sop_class_uid": "",
             "path": "(3006,0010)[0].(0020,0052)"},
            {"kind": "series", "uid": ids.series(patient, "P"), "sop_class_uid": "",
             "path": "(3006,0010)[0].(3006,0012)[0].(3006,0014)[0].(0020,000E)"}, *ct_refs]
    label = f"Liver tumour {patient.display_name}" if flag else "Liver tumour"
    yield audit_line(time=at(), sop_class_uid=RT_STRUCTURE_SET, modality="RTSTRUCT",
                     series_uid=ids.series(patient, "RTSS"),
                     sop_uid=ids.instance(patient, "RTSS", 0),
                     kept_text={"StudyDescription": [STUDY_DESCRIPTION],
                                "SeriesDescription": ["HCCP contours"],
                                "StructureSetLabel": [label], "ROIName": ["HCCP"]},
                     flagged_text=["StructureSetLabel"] if flag else [], references=refs, **common)
    if screenshot:
        yield audit_line(outcome="quarantined", reason="burned-in-annotation-risk", time=at(),
                         run_id=run_id)


def release_lines(patients: int = 3, *, slices: int = 4, first: int = 0, run_id: str = "0123456789ab",
                  quarantine_referenced_every: int = 0, flag_every: int = 0,
                  screenshot: bool = True) -> Iterator[dict[str, object]]:
    """The audit lines of a release of ``patients`` patients (indices ``first``...).

    Every ``quarantine_referenced_every``-th patient (0: none) has a dangling RTSS reference, every
    ``flag_every``-th a flagged Structure Set Label (see :func:`patient_lines`)."""
    for n, index in enumerate(range(first, first + patients)):
        yield from patient_lines(
            index, slices=slices, run_id=run_id, screenshot=screenshot,
            quarantine_referenced=bool(quarantine_referenced_every) and n % quarantine_referenced_every == 0,
            flag=bool(flag_every) and n % flag_every == 0,
            start=_START + timedelta(seconds=index))


def lines_for(total: int, *, slices: int = 50, **options: int) -> Iterator[dict[str, object]]:
    """About ``total`` lines (exactly ``total``: the last patient is cut) of a release of
    ``slices``-slice studies, for scaling benchmarks."""
    per_patient = 4 * slices + 2
    patients = -(-total // per_patient)
    for n, line in enumerate(release_lines(patients, slices=slices, **options)):  # type: ignore[arg-type]
        if n >= total:
            return
        yield line


def write_audit_records(records: str | Path, lines: Iterable[dict[str, object]], *,
                        writers: int = 1, name: str = "run") -> list[Path]:
    """Write lines into ``<records>/audit/<name>-<n>.jsonl``, dealt round-robin to ``writers``
    files (as several writer processes would); returns the files."""
    folder = Path(records) / "audit"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}-{n}.jsonl" for n in range(writers)]
    with ExitStack() as stack:
        handles = [stack.enter_context(open(path, "a", encoding="utf-8")) for path in paths]
        for n, line in enumerate(lines):
            handles[n % writers].write(json.dumps(line, ensure_ascii=False) + "\n")
    return paths
