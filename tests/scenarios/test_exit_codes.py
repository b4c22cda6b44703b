"""A user gets exit code 2 and a message that says what to fix for a bad profile, a missing key or
a key others can read; nothing is written then.  0 is a clean run; 3 (quarantine) is in
test_bad_files_are_quarantined."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import deid, run_args

from deid.keys import generate_key_file


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out-quarantine").exists() and not (tmp_path / "out-records").exists()


def test_clean_run_exits_0(tmp_path: Path, sample_study: Path, key_file: Path) -> None:
    result = deid(*run_args(sample_study, tmp_path / "out", key_file))
    assert result.returncode == 0, result.stderr


def test_bad_profile_exits_2_naming_file_key_and_rule(tmp_path: Path, sample_study: Path, key_file: Path) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text("name: site\nextends: vghtpe\nrules:\n  AccessionNumber: {action: hash, length: 20}\n")
    result = deid(*run_args(sample_study, tmp_path / "out", key_file, "--profile", profile))
    assert result.returncode == 2
    assert str(profile) in result.stderr and "rules.AccessionNumber" in result.stderr
    assert "length 20" in result.stderr and "1..16" in result.stderr
    _nothing_written(tmp_path)


def test_unknown_profile_name_exits_2_listing_the_known_ones(tmp_path: Path, sample_study: Path,
                                                              key_file: Path) -> None:
    result = deid(*run_args(sample_study, tmp_path / "out", key_file, "--profile", "vghtpee"))
    assert result.returncode == 2
    assert "'vghtpee'" in result.stderr and "vghtpe" in result.stderr and "ps3.15-basic" in result.stderr
    _nothing_written(tmp_path)


def test_missing_key_exits_2_saying_how_to_make_one(tmp_path: Path, sample_study: Path) -> None:
    result = deid("run", sample_study, "--out", tmp_path / "out", "--no-progress")
    assert result.returncode == 2
    assert "--key-file" in result.stderr and "DEID_KEY_FILE" in result.stderr and "deid keygen" in result.stderr
    _nothing_written(tmp_path)


def test_key_file_not_found_exits_2(tmp_path: Path, sample_study: Path) -> None:
    missing = tmp_path / "nope.key"
    result = deid(*run_args(sample_study, tmp_path / "out", missing))
    assert result.returncode == 2 and str(missing) in result.stderr and "deid keygen" in result.stderr
    _nothing_written(tmp_path)


@pytest.mark.parametrize("by", ["flag", "environment"])
def test_key_with_mode_0644_exits_2_saying_chmod_600(tmp_path: Path, sample_study: Path, by: str) -> None:
    key = tmp_path / "deid.key"
    generate_key_file(key)
    key.chmod(0o644)
    if by == "flag":
        result = deid(*run_args(sample_study, tmp_path / "out", key))
    else:
        result = deid("run", sample_study, "--out", tmp_path / "out", "--no-progress", env={"DEID_KEY_FILE": str(key)})
    assert result.returncode == 2
    assert f"chmod 600 {key}" in result.stderr
    assert key.read_text().strip() not in result.stderr + result.stdout
    _nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--quarantine", "out/q"], "--quarantine must be outside the output folder"),
    ],
)
def test_other_usage_errors_exit_2(tmp_path: Path, sample_study: Path, key_file: Path, extra: list[str],
                                   words: str) -> None:
    extra = [str(tmp_path / e) if e.startswith("out/") else e for e in extra]
    result = deid(*run_args(sample_study, tmp_path / "out", key_file, *extra))
    assert result.returncode == 2 and words in result.stderr
    _nothing_written(tmp_path)


def test_missing_source_exits_2(tmp_path: Path, key_file: Path) -> None:
    result = deid(*run_args(tmp_path / "no-such-folder", tmp_path / "out", key_file))
    assert result.returncode == 2 and "no-such-folder" in result.stderr
    _nothing_written(tmp_path)


def test_bad_lookup_exits_2(tmp_path: Path, sample_study: Path, key_file: Path) -> None:
    lookup = tmp_path / "lookup.csv"
    lookup.write_text("id,name\nA1,622\n")
    result = deid(*run_args(sample_study, tmp_path / "out", key_file, "--lookup", lookup))
    assert result.returncode == 2 and "patient_id and case_number" in result.stderr
    _nothing_written(tmp_path)


def test_a_command_line_mistake_exits_2(tmp_path: Path, sample_study: Path) -> None:
    result = deid("run", sample_study)
    assert result.returncode == 2 and "--out" in result.stderr
