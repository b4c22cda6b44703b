"""A run is killed half-way: every object the journal calls done has its audit line, the lines of
the objects done since are there too, and the next run completes the record of every output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import REPO, deid, run_args

from deid.run import BATCH
from deid.synthetic import make_patient, write_sample_study

SLICES = 20  # 4 phases x 20 + RTSS = 81 objects: more than one journal batch
KILL_AT = BATCH + 10

# deid run in a process that dies like kill -9 (os._exit: no clean-up) while working on object
# KILL_AT, once the first journal batch is on disk.
KILLED_RUN = """
import os, sys, time
from pathlib import Path
import deid.run.loop as run_module
from deid.keys import SecretKey
from deid.profile.loader import load_profile

source, out, records, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
work, calls = run_module._work, [0]

def dying(item):
    calls[0] += 1
    if calls[0] == kill_at:
        journal = records / "journal.jsonl"
        deadline = time.monotonic() + 60
        while (not journal.exists() or not journal.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(137)
    return work(item)

run_module._work = dying
run_module.run([source], run_module.RunPaths.beside(out, None, records), load_profile("vghtpe"),
               SecretKey(bytes(range(32))), workers=1, progress=False)
"""


def _lines(records: Path) -> list[dict]:
    lines = []
    for path in sorted((records / "audit").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def test_a_killed_run_keeps_its_audit_lines(tmp_path: Path, key_file: Path) -> None:
    source, out, records = tmp_path / "in", tmp_path / "out", tmp_path / "records"
    write_sample_study(source, make_patient(4), slices=SLICES, size=16)
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, source, out, records, str(KILL_AT)],
                            cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == 137, killed.stderr

    journalled = [json.loads(line) for line in (records / "journal.jsonl").read_text().splitlines()
                  if line.endswith("}")]
    assert len(journalled) >= BATCH
    audited = {line["output"] for line in _lines(records) if line["outcome"] == "written"}
    assert {entry["output"] for entry in journalled} <= audited  # done => audited
    assert len(audited) == KILL_AT - 1  # every object finished before the kill has its line

    again = deid(*run_args(source, out, key_file, "--records", records))
    assert again.returncode == 0, again.stderr
    outputs = {str(p.relative_to(out)) for p in out.rglob("*.dcm")}
    assert len(outputs) == 4 * SLICES + 1
    audited = {line["output"] for line in _lines(records) if line["outcome"] in ("written", "skipped")}
    assert outputs <= audited
