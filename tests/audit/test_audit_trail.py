"""AuditTrail: one JSON line per object event (released values only), owner-only files, lines that
survive a crash of the writing process; the re-identification map beside it, encrypted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, deid, phi_found, run_args

from deid.audit.reid import WrongKeyError, read_map
from deid.audit.trail import AUDIT_DIR, AuditTrail
from deid.keys import SecretKey
from deid.outcome import Forwarded, Outcome, Written
from deid.pipeline import Pipeline
from deid.synthetic import make_patient, oddities, write_sample_study

INTERFACE_KEYS = {"time", "run_id", "source", "outcome", "reason", "destination", "profile",
                  "sop_class_uid", "modality", "patient_id", "study_uid", "series_uid", "sop_uid",
                  "output", "actions", "applied", "kept_text", "flagged_text", "references"}


@pytest.fixture
def outcomes(tmp_path: Path, vghtpe, key) -> tuple[list[Outcome], object]:
    patient = make_patient(5)
    folder = tmp_path / "in"
    sources = write_sample_study(folder, patient, slices=1, size=16)
    sources.append(oddities.ct_bad_date(folder, patient))
    pipeline = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q")
    return [pipeline.process_file(path) for path in sources], patient


def _lines(records: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((records / AUDIT_DIR).glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_line_per_event_with_released_values_only(tmp_path: Path, outcomes, vghtpe, key) -> None:
    done, patient = outcomes
    records = tmp_path / "records"
    with AuditTrail(records, key=key, profile=vghtpe, run_id="r1", source="run") as trail:
        for outcome in done:
            trail.record(outcome)
        trail.record(Forwarded(done[0].released, "PACS@127.0.0.1:11112"))
    lines = _lines(records)
    assert len(lines) == len(done) + 1
    for line in lines:
        assert INTERFACE_KEYS <= set(line)
        assert line["profile"] == {"name": "vghtpe", "version": vghtpe.version, "sha256": vghtpe.sha256}
        assert line["run_id"] == "r1" and line["source"] == "run" and line["time"].endswith("Z")
    written = [line for line in lines if line["outcome"] == "written"]
    assert len(written) == 5
    ct = next(line for line in written if line["modality"] == "CT")
    assert ct["actions"]["remove"] > 0 and ct["applied"]["(0010,0010)"] == "case_number"
    assert ct["kept_text"]["BodyPartExamined"] == ["ABDOMEN"] and ct["flagged_text"] == []
    assert ct["output"] and ct["sop_uid"] in ct["output"]
    quarantined = [line for line in lines if line["outcome"] == "quarantined"]
    assert len(quarantined) == 1
    assert quarantined[0]["reason"] == "rule-not-applicable" and quarantined[0]["quarantine"]
    assert all(quarantined[0][k] == "" for k in ("patient_id", "study_uid", "series_uid", "sop_uid"))
    forwarded = lines[-1]
    assert forwarded["outcome"] == "forwarded" and forwarded["destination"] == "PACS@127.0.0.1:11112"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert phi_found(text, patient) == []


def test_files_are_owner_only_and_the_map_holds_no_plaintext(tmp_path: Path, outcomes, vghtpe, key) -> None:
    done, patient = outcomes
    records = tmp_path / "records"
    with AuditTrail(records, key=key, profile=vghtpe, run_id="r2", source="serve") as trail:
        for outcome in done:
            trail.record(outcome)
    for folder in (records, records / "audit", records / "reid"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    files = list((records / "audit").iterdir()) + list((records / "reid").iterdir())
    assert len(files) == 2
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path
    blob = next((records / "reid").iterdir()).read_bytes()
    assert phi_found(blob, patient) == []
    assert patient.patient_id.encode() not in blob and b"CHEN" not in blob


def test_the_map_gives_back_original_and_released_values(tmp_path: Path, outcomes, vghtpe, key, ) -> None:
    done, patient = outcomes
    records = tmp_path / "records"
    with AuditTrail(records, key=key, profile=vghtpe, run_id="r3", source="run") as trail:
        for outcome in done:
            trail.record(outcome)
            if isinstance(outcome, Written):  # a second event of the object: mapped once
                trail.record(Forwarded(outcome.released, "PACS"))
    entries = read_map(records, key).entries
    written = [o.released for o in done if isinstance(o, Written)]
    assert len(entries) == len(written)
    by_sop = {e["released"]["sop_uid"]: e for e in entries}
    for outcome in written:
        entry = by_sop[outcome.sop_uid]
        assert entry["original"]["patient_id"] == patient.patient_id
        assert entry["original"]["patient_name"] == patient.dicom_name
        assert entry["original"]["accession_number"] == patient.accession_number
        assert entry["original"]["study_uid"] == patient.study_instance_uid
        assert entry["released"]["patient_id"] == outcome.patient_id
        assert entry["released"]["study_uid"] == outcome.study_uid
        assert entry["released"]["patient_name"] == outcome.pseudonyms["patient_name"]


def test_another_key_does_not_open_the_map(tmp_path: Path, outcomes, vghtpe, key) -> None:
    done, _ = outcomes
    records = tmp_path / "records"
    with AuditTrail(records, key=key, profile=vghtpe, run_id="r4", source="run") as trail:
        trail.record(done[0])
    with pytest.raises(WrongKeyError, match="does not open"):
        read_map(records, SecretKey(b"\x07" * 32))


def test_a_damaged_entry_is_counted_and_a_cut_last_line_skipped(tmp_path: Path, outcomes, vghtpe, key) -> None:
    done, _ = outcomes
    records = tmp_path / "records"
    with AuditTrail(records, key=key, profile=vghtpe, run_id="r5", source="run") as trail:
        for outcome in done[:3]:
            trail.record(outcome)
    path = next((records / "reid").iterdir())
    lines = path.read_bytes().splitlines(keepends=True)
    flipped = bytearray(lines[1])
    flipped[20] = ord("A") if flipped[20] != ord("A") else ord("B")
    path.write_bytes(lines[0] + bytes(flipped) + lines[2] + lines[3][:30])  # altered, whole, cut
    contents = read_map(records, key)
    # the altered line is an object's entry; the whole one after it, that object's tokens
    assert (len(contents.entries) + len(contents.tokens), contents.damaged_lines) == (1, 1)


def test_lines_survive_a_crash_of_the_writing_process(tmp_path: Path) -> None:
    """Recorded lines reach the OS at once: a process killed before close loses none."""
    records = tmp_path / "records"
    script = f"""
import os, sys
from pathlib import Path
from deid.audit.trail import AuditTrail
from deid.keys import SecretKey
from deid.outcome import Released, Written
from deid.profile.loader import load_profile
trail = AuditTrail(Path({str(records)!r}), key=SecretKey(bytes(32)), profile=load_profile("vghtpe"),
                   run_id="crash", source="run")
for i in range(5):
    trail.record(Written(Released(f"p/s/e/{{i}}.dcm", sop_uid=f"2.25.{{i}}")))
os._exit(9)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 9, result.stderr
    lines = _lines(records)
    assert [line["sop_uid"] for line in lines] == [f"2.25.{i}" for i in range(5)]


def test_a_line_cut_by_a_crash_is_ended_before_the_next(tmp_path: Path) -> None:
    from deid.audit.files import AppendFile

    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"whole": 1}\n{"cut": ')
    log = AppendFile(path)
    log.write(b'{"next": 2}\n')
    log.close()
    assert path.read_bytes().splitlines()[-1] == b'{"next": 2}'
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_threads_recording_at_once_give_whole_lines_and_one_map(tmp_path: Path, outcomes, vghtpe, key) -> None:
    """The service records from several threads into one trail."""
    import dataclasses
    import threading

    done, _ = outcomes
    written = next(o for o in done if isinstance(o, Written))
    records = tmp_path / "records"
    trail = AuditTrail(records, key=key, profile=vghtpe, run_id="t", source="serve")

    def work(worker: int) -> None:
        for i in range(50):
            trail.record(Written(dataclasses.replace(written.released, sop_uid=f"2.25.{worker}{i:03d}")))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trail.close()
    assert len(_lines(records)) == 200
    assert len(list((records / "reid").iterdir())) == 1
    contents = read_map(records, key)
    assert (len(contents.entries), contents.damaged_lines) == (200, 0)


def test_the_set_of_mapped_uids_does_not_grow_in_memory(tmp_path: Path, outcomes, vghtpe, key) -> None:
    """A writer maps each object once (the node's and a run's writers live for many objects):
    what it keeps to know that takes no memory per object (tracemalloc: Python's allocations)."""
    import dataclasses
    import tracemalloc

    done, _ = outcomes
    written = next(o for o in done if isinstance(o, Written))
    facts = [dataclasses.replace(written.released, sop_uid=f"2.25.{n:039d}") for n in range(6000)]
    records = tmp_path / "records"
    with AuditTrail(records, key=key, profile=vghtpe, run_id="m", source="serve") as trail:
        for released in facts[:1000]:  # warm up: files, caches, the first pages
            trail.record(Written(released))
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for released in facts[1000:]:
                trail.record(Written(released))
                trail.record(Forwarded(released, "PACS"))  # a second event: not mapped again
            grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
        finally:
            tracemalloc.stop()
    assert grown < 100_000  # a set of the 5,000 UIDs: ~650,000 B
    assert len(read_map(records, key).entries) == 6000


def test_a_run_over_copies_maps_each_released_object_once(tmp_path: Path, key_file: Path,
                                                           key) -> None:
    """The same objects twice in one run's input are written twice and mapped once: the map is
    the one a run without the copies writes (but for times and run ids)."""
    import shutil

    source = tmp_path / "in"
    write_sample_study(source / "a", make_patient(0), slices=2, size=16)
    write_sample_study(source / "b", make_patient(1), slices=1, size=16)
    with_copies = tmp_path / "with-copies"
    shutil.copytree(source, with_copies / "first")
    shutil.copytree(source, with_copies / "second")

    def run_map(sources: Path, name: str) -> tuple[list[str], int]:
        records = tmp_path / name / "records"
        result = deid(*run_args(sources, tmp_path / name / "out", key_file, "--records", records))
        assert result.returncode == 0, result.stderr
        contents = read_map(records, key)
        shown = [json.dumps({k: v for k, v in entry.items() if k not in ("time", "run_id")},
                            sort_keys=True) for entry in contents.entries + contents.tokens]
        return sorted(shown), json.loads((records / "summary.json").read_text())["written"]

    once, written_once = run_map(source, "once")
    twice, written_twice = run_map(with_copies, "twice")
    assert written_twice == 2 * written_once and len(once) > written_once
    assert twice == once


def test_a_writer_remembers_a_bounded_number_of_token_sets(tmp_path: Path, key, monkeypatch) -> None:
    """A study's token set is written once while the writer remembers it; the writer remembers
    the last TOKEN_SETS_KEPT sets only (a node's writer lives for months), and a set that comes
    back after that is written again (the readers merge them)."""
    from deid.audit import reid

    monkeypatch.setattr(reid, "TOKEN_SETS_KEPT", 3)
    records = tmp_path / "records"
    writer = reid.ReidMapWriter(records, key=key, run_id="r", source="serve")
    study = {"patient_id": "P", "study_uid": "2.25.1"}
    for _ in range(2):
        writer.add_tokens(study, ["CHEN", "MEI-LING"], run_id="r")  # the same set: once
    for n in range(2, 6):  # four other studies: the first set leaves the writer's memory
        writer.add_tokens({"patient_id": "P", "study_uid": f"2.25.{n}"}, ["CHEN"], run_id="r")
        assert len(writer._token_sets) <= 3
    writer.add_tokens(study, ["CHEN", "MEI-LING"], run_id="r")  # written again
    writer.close()
    tokens = reid.read_map(records, key).tokens
    assert len(tokens) == 6
    assert sum(entry["released"]["study_uid"] == "2.25.1" for entry in tokens) == 2
