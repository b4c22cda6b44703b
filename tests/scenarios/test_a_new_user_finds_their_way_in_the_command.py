"""A new user tries the command with `--help` and `--version` only: the version names the
distribution, every argument of every command explains itself, a typo in a profile's YAML is
pointed at by file, line and column, and `-q` quiets a run to its warnings and summary."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from support import deid, run_args

from deid.synthetic import make_patient, oddities

COMMANDS = ("keygen", "run", "explain", "reidentify", "serve", "status", "report", "verify", "demo")


def test_version_names_the_distribution() -> None:
    expected = f"deid-pacs {metadata.version('deid-pacs')}\n"
    assert deid("--version").stdout == expected
    script = Path(sys.executable).parent / "deid"  # the console script pip installed
    installed = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert (installed.returncode, installed.stdout) == (0, expected)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_with_the_global_flags(command: str) -> None:
    """(That every argument has a help text is checked on the parser: tests/test_cli.py.)"""
    result = deid(command, "--help")
    assert result.returncode == 0 and result.stdout.startswith(f"usage: deid {command}")
    assert "-q, --quiet" in result.stdout and "-v, --verbose" in result.stdout


def test_help_of_the_arguments_once_missing(tmp_path: Path) -> None:
    assert "where to write the key" in deid("keygen", "--help").stdout
    assert "where the demo writes" in deid("demo", "--help").stdout
    explain = deid("explain", "--help").stdout
    assert "built-in profile name or a YAML path" in explain.split("--profile")[-1]


def test_a_yaml_typo_names_file_line_and_column(tmp_path: Path, sample_study: Path,
                                                key_file: Path) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text("name: site\nextends: vghtpe\nrules:\n  AccessionNumber: remove\n"
                       "   StationName: remove\n")
    for result in (deid("explain", "--profile", profile),
                   deid(*run_args(sample_study, tmp_path / "out", key_file, "--profile", profile))):
        assert result.returncode == 2
        assert f"{profile}:5:15: not valid YAML: mapping values are not allowed here" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_quiet_keeps_warnings_and_the_summary(tmp_path: Path, sample_study: Path,
                                              key_file: Path) -> None:
    odd = tmp_path / "odd"
    oddities.not_dicom(odd)
    oddities.truncated_dicom(odd, make_patient(0))
    loud = deid(*run_args([sample_study, odd], tmp_path / "loud", key_file))
    quiet = deid("-q", *run_args([sample_study, odd], tmp_path / "quiet", key_file))
    assert loud.returncode == quiet.returncode == 3
    assert "run started" in loud.stderr and "run finished" in loud.stderr
    assert "run started" not in quiet.stderr and "run finished" not in quiet.stderr
    warning = '"event": "quarantined"'  # one warning line per quarantined object
    assert quiet.stderr.count(warning) == loud.stderr.count(warning) == 2
    summary = re.compile(r"in [0-9.]+ ?m?s")  # the summary line, but for its duration
    assert summary.sub("", quiet.stdout) == summary.sub("", loud.stdout.replace("loud", "quiet"))
    assert "2 quarantined" in quiet.stdout
