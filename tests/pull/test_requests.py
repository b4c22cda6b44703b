"""The approved list: a CSV with a header row or a plain list; values named by reference only."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.errors import UsageError
from deid.keys import SecretKey
from deid.pull.requests import ACCESSION, PATIENT, read_requests, reference


def _write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_a_csv_with_a_header_row_gives_its_column(tmp_path: Path, key: SecretKey) -> None:
    path = _write(tmp_path, "\ufeffapproved_by,Accession_Number\nIRB,A1001\nIRB,A1002\n,\nIRB,A1001\n")
    requests = read_requests(path, ACCESSION, key)
    assert [r.value for r in requests] == ["A1001", "A1002"]  # blanks and repeats dropped


def test_a_plain_list_is_one_value_a_line(tmp_path: Path, key: SecretKey) -> None:
    path = _write(tmp_path, "P-1,2\n\n# a comment\n  P-3  \n", "ids.txt")
    assert [r.value for r in read_requests(path, PATIENT, key)] == ["P-1,2", "P-3"]


def test_the_wrong_column_is_refused(tmp_path: Path, key: SecretKey) -> None:
    path = _write(tmp_path, "patient_id\nP1\n")
    with pytest.raises(UsageError, match="use --patients"):
        read_requests(path, ACCESSION, key)


def test_an_error_names_the_line_never_the_value(tmp_path: Path, key: SecretKey) -> None:
    path = _write(tmp_path, "accession_number\nGOOD1\nBAD\\VALUE\n")
    with pytest.raises(UsageError) as raised:
        read_requests(path, ACCESSION, key)
    assert "line 3" in str(raised.value) and "BAD" not in str(raised.value)


def test_an_empty_list_is_refused(tmp_path: Path, key: SecretKey) -> None:
    with pytest.raises(UsageError, match="no accession number"):
        read_requests(_write(tmp_path, "accession_number\n"), ACCESSION, key)


def test_the_reference_is_keyed_and_hides_the_value(key: SecretKey) -> None:
    ref = reference(key, ACCESSION, "A1001")
    assert ref.startswith("A-") and len(ref) == 18 and "A1001" not in ref
    assert ref == reference(key, ACCESSION, "A1001")
    assert ref != reference(SecretKey(bytes(32)), ACCESSION, "A1001")
    assert reference(key, PATIENT, "A1001").startswith("P-")


def test_a_request_does_not_show_its_value(tmp_path: Path, key: SecretKey) -> None:
    (request,) = read_requests(_write(tmp_path, "A1001\n"), ACCESSION, key)
    assert "A1001" not in repr(request) and "A1001" not in str(request)
