"""Someone with the records but another key asks `deid reidentify`: a clean refusal (exit 2, no
traceback, nothing on standard output), recorded in the audit log; the map files say nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import deid, phi_found, run_args


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory, sample_study: Path, key_file: Path) -> Path:
    base = tmp_path_factory.mktemp("nokey")
    result = deid(*run_args(sample_study, base / "out", key_file, "--records", base / "records"))
    assert result.returncode == 0, result.stderr
    return base / "records"


def test_a_wrong_key_is_refused_cleanly(records: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    assert deid("keygen", other).returncode == 0
    released_id = next((records.parent / "out").iterdir()).name
    result = deid("reidentify", "--key-file", other, records, "--patient-id", released_id)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "the key does not open this re-identification map" in result.stderr
    assert "Traceback" not in result.stderr
    queries = (records / "audit" / "reidentify-queries.jsonl").read_text().splitlines()
    assert json.loads(queries[-1])["result"] == "wrong-key"


def test_without_a_key_file_nothing_is_opened(records: Path) -> None:
    result = deid("reidentify", records, "--uid", "2.25.1")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr


def test_the_map_files_are_owner_only_and_hold_no_plaintext(records: Path, patient) -> None:
    maps = list((records / "reid").glob("*.map"))
    assert maps and (records / "reid").stat().st_mode & 0o777 == 0o700
    for path in maps:
        assert path.stat().st_mode & 0o777 == 0o600
        data = path.read_bytes()
        assert phi_found(data, patient) == []
        assert patient.name.split("^")[0].encode() not in data
