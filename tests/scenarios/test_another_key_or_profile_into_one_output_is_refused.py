"""A user re-runs into an output released earlier.  With another key it is refused (exit 2: it would
release the same patient again under a second pseudonym), saying to use a new output folder; with a
changed profile too, unless they give --reprocess, which releases every source again with the new
profile and removes from the output what the old one released: the output is then the one a fresh
run with the new profile gives, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import deid, run_args, tree

from deid.keys import generate_key_file
from deid.profile.loader import load_profile
from deid.synthetic import oddities


@pytest.fixture
def released(tmp_path: Path, sample_study: Path, key_file: Path) -> dict:
    out = tmp_path / "out"
    result = deid(*run_args(sample_study, out, key_file))
    assert result.returncode == 0, result.stderr
    return {"out": out, "records": tmp_path / "out-records", "tree": tree(out)}


def _folders(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_dir()}


def test_the_records_know_the_key_and_profile_of_each_object(released: dict, key_file: Path) -> None:
    vghtpe = load_profile("vghtpe")
    release = json.loads((released["records"] / "release.json").read_text())
    summary = json.loads((released["records"] / "summary.json").read_text())
    assert release["profile_sha256"] == vghtpe.sha256 == summary["profile_sha256"]
    assert release["key_fingerprint"] == summary["key_fingerprint"]
    entries = [json.loads(line) for line in (released["records"] / "journal.jsonl").read_text().splitlines()]
    assert entries and all(e["profile_sha256"] == vghtpe.sha256 for e in entries)
    assert all(e["key_fingerprint"] == release["key_fingerprint"] for e in entries)


def test_another_key_is_refused_saying_to_use_a_new_output(released: dict, tmp_path: Path,
                                                           sample_study: Path) -> None:
    other = tmp_path / "other.key"
    generate_key_file(other)
    result = deid(*run_args(sample_study, released["out"], other))
    assert result.returncode == 2, result.stdout
    assert "released with another key" in result.stderr and "new output folder (--out NEW" in result.stderr
    assert other.read_text().strip() not in result.stderr and "Traceback" not in result.stderr
    assert tree(released["out"]) == released["tree"]  # not a second patient
    # --reprocess does not make another key welcome
    again = deid(*run_args(sample_study, released["out"], other, "--reprocess"))
    assert again.returncode == 2 and "another key" in again.stderr


def test_a_changed_profile_is_refused_without_reprocess(released: dict, sample_study: Path, key_file: Path) -> None:
    result = deid(*run_args(sample_study, released["out"], key_file, "--profile", "ps3.15-basic"))
    assert result.returncode == 2, result.stdout
    assert "released with profile 'vghtpe'" in result.stderr and "'ps3.15-basic'" in result.stderr
    assert "--reprocess" in result.stderr and "new output folder" in result.stderr
    assert tree(released["out"]) == released["tree"]


def test_reprocess_gives_the_output_a_fresh_run_with_the_new_profile_gives(released: dict, tmp_path: Path,
                                                                          sample_study: Path, key_file: Path) -> None:
    out = released["out"]
    result = deid(*run_args(sample_study, out, key_file, "--profile", "ps3.15-basic", "--reprocess"))
    assert result.returncode == 0, result.stderr
    fresh = tmp_path / "fresh"
    assert deid(*run_args(sample_study, fresh, key_file, "--profile", "ps3.15-basic")).returncode == 0
    assert tree(out) == tree(fresh)  # what the old profile released, and only that, is gone
    assert _folders(out) == _folders(fresh)  # no empty folders left behind
    assert tree(out) != released["tree"]
    summary = json.loads((released["records"] / "summary.json").read_text())
    assert summary["written"] == summary["total"] and summary["skipped"] == 0
    if summary["removed"]:
        assert f"{summary['removed']} files of the earlier profile's release removed" in result.stdout

    # the output now belongs to the new profile: a rerun skips everything, the old one is refused
    rerun = deid(*run_args(sample_study, out, key_file, "--profile", "ps3.15-basic"))
    assert rerun.returncode == 0 and "0 written" in rerun.stdout
    old = deid(*run_args(sample_study, out, key_file))
    assert old.returncode == 2 and "released with profile 'ps3.15-basic'" in old.stderr
    assert tree(out) == tree(fresh)


def test_reprocess_with_the_quarantine_as_input_is_refused(released: dict, key_file: Path) -> None:
    result = deid("run", "--from-quarantine", released["out"].parent / "out-quarantine", "--out",
                  released["out"], "--key-file", key_file, "--reprocess", "--no-progress")
    assert result.returncode == 2 and "give the SRC folders" in result.stderr


def test_a_changed_profile_from_the_quarantine_is_refused_saying_both_ways(tmp_path: Path, sample_study: Path,
                                                                           key_file: Path) -> None:
    odd = tmp_path / "odd"
    oddities.not_dicom(odd)
    out, quarantine = tmp_path / "out", tmp_path / "out-quarantine"
    assert deid(*run_args([sample_study, odd], out, key_file)).returncode == 3
    before = tree(quarantine)
    result = deid("run", "--from-quarantine", quarantine, "--out", out, "--key-file", key_file,
                  "--profile", "ps3.15-basic", "--no-progress")
    assert result.returncode == 2
    assert "--reprocess" in result.stderr and f"--from-quarantine {quarantine}" in result.stderr
    assert tree(quarantine) == before


def test_another_deny_list_counts_as_a_changed_profile(released: dict, tmp_path: Path, sample_study: Path,
                                                       key_file: Path) -> None:
    staff = tmp_path / "staff.txt"
    staff.write_text("Dr Example Person\n")
    result = deid(*run_args(sample_study, released["out"], key_file, "--deny-list", staff))
    assert result.returncode == 2, result.stdout
    assert "another deny-list" in result.stderr and "--reprocess" in result.stderr
    assert "Example" not in result.stderr  # the entries are never shown
    again = deid(*run_args(sample_study, released["out"], key_file, "--deny-list", staff, "--reprocess"))
    assert again.returncode == 0, again.stderr
    release = json.loads((released["records"] / "release.json").read_text())
    assert release["deny_list_sha256"] and release["profile"] == "vghtpe"
