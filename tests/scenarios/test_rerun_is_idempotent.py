"""A user runs `deid run` again on the same input: nothing is redone, nothing changes; after a crash
the next run completes the output with the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SLICES, deid, run_args, tree

TOTAL = 4 * SLICES + 1


def _run(study: Path, out: Path, key_file: Path):
    result = deid(*run_args(study, out, key_file))
    assert result.returncode == 0, result.stderr
    return result


def _entries(journal: Path) -> list[dict]:
    """The journal's whole lines (a line cut by the crash is not one)."""
    entries = []
    for line in journal.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


@pytest.fixture
def first(tmp_path: Path, sample_study: Path, key_file: Path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "out"
    _run(sample_study, out, key_file)
    return out, tree(out)


def test_second_run_skips_everything_and_changes_nothing(first, sample_study: Path, key_file: Path) -> None:
    out, before = first
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")}
    result = _run(sample_study, out, key_file)
    assert f"{TOTAL} objects: 0 written, {TOTAL} skipped" in result.stdout
    assert tree(out) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")} == mtimes  # not even rewritten
    summary = json.loads((out.parent / "out-records" / "summary.json").read_text())
    assert (summary["written"], summary["skipped"], summary["quarantined"]) == (0, TOTAL, 0)


def test_a_run_into_a_fresh_folder_gives_the_same_bytes(first, tmp_path: Path, sample_study: Path,
                                                        key_file: Path) -> None:
    _, before = first
    _run(sample_study, tmp_path / "again", key_file)
    assert tree(tmp_path / "again") == before


def test_after_a_crash_the_next_run_completes_the_same_output(first, sample_study: Path, key_file: Path) -> None:
    out, before = first
    journal = out.parent / "out-records" / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    assert len(lines) == TOTAL
    # The crash: the journal lost its tail, cut in the middle of a line; of the objects in that tail
    # one was written (not journalled), the others (about half of all outputs) never reached the disk.
    keep = len(lines) // 2
    tail = [json.loads(line)["output"] for line in lines[keep:]]
    for relative in tail[1:]:
        (out / relative).unlink()
    journal.write_text("".join(lines[:keep]) + lines[keep][: len(lines[keep]) // 2])
    assert len(tree(out)) == TOTAL - len(tail) + 1

    result = _run(sample_study, out, key_file)
    assert f"{len(tail)} written, {TOTAL - len(tail)} skipped" in result.stdout
    assert tree(out) == before  # the same bytes, nothing missing, no extra files
    assert {e["output"] for e in _entries(journal)} == set(before)  # every object is journalled

    again = _run(sample_study, out, key_file)
    assert f"0 written, {TOTAL} skipped" in again.stdout
    assert tree(out) == before


def test_a_partial_file_left_by_a_crash_is_gone_after_the_next_run(first, sample_study: Path,
                                                                  key_file: Path) -> None:
    out, before = first
    victim = min(out.rglob("*.dcm"))
    partial = victim.parent / f".{victim.name}.4242.partial"
    partial.write_bytes(victim.read_bytes()[:100])  # what a kill -9 during write_bytes_atomic leaves
    victim.unlink()
    _run(sample_study, out, key_file)
    assert tree(out) == before
