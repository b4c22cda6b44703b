"""An authorised research office exports the mapping of a release to link or score it (e.g. with the
NCI MIDI-B validation script): `deid reidentify --key-file K RECORDS --export DIR` writes
uid_mapping.csv and patid_mapping.csv (id_old,id_new, mode 0600), records the export in the audit
log, and never overwrites an earlier export."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pydicom
import pytest
from support import SIZE, deid, run_args

from deid.synthetic import make_patient, write_sample_study


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("export")
    incoming = root / "incoming"
    sources = write_sample_study(incoming, make_patient(11), slices=2, size=SIZE)
    sources += write_sample_study(incoming / "second", make_patient(12), slices=1, size=SIZE)
    result = deid(*run_args(incoming, root / "out", key_file))
    assert result.returncode == 0, result.stderr
    return {"root": root, "sources": sources, "out": root / "out", "records": root / "out-records"}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["id_old", "id_new"]
        return list(reader)


def test_every_released_uid_maps_back_to_its_input(release, key_file: Path) -> None:
    folder = release["root"] / "validation"
    result = deid("reidentify", "--key-file", key_file, release["records"], "--export", folder)
    assert result.returncode == 0, result.stderr
    uid_rows, patid_rows = _rows(folder / "uid_mapping.csv"), _rows(folder / "patid_mapping.csv")
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    new_to_old = {row["id_new"]: row["id_old"] for row in uid_rows}
    patients = {row["id_new"]: row["id_old"] for row in patid_rows}
    inputs = {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, release["sources"])}
    outputs = [pydicom.dcmread(path) for path in release["out"].rglob("*.dcm")]
    assert len(outputs) == len(inputs)
    for released in outputs:
        original = inputs[
            new_to_old[str(released.SOPInstanceUID)]
        ]  # the released object's own input
        assert new_to_old[str(released.SeriesInstanceUID)] == original.SeriesInstanceUID
        assert new_to_old[str(released.StudyInstanceUID)] == original.StudyInstanceUID
        assert patients[str(released.PatientID)] == original.PatientID
    assert len({row["id_old"] for row in patid_rows}) == 2
    line = json.loads(
        (release["records"] / "audit" / "reidentify-queries.jsonl").read_text().splitlines()[-1]
    )
    assert line["asked"] == {"export": str(folder.resolve())} and line["result"] == "exported"
    assert line["uids"] == len(uid_rows) and line["patient_ids"] == len(patid_rows)
    assert not any(
        o.PatientID in json.dumps(line) for o in inputs.values()
    )  # the answer is not logged
    assert "uid_mapping.csv" in result.stdout and not any(
        o.PatientID in result.stdout + result.stderr for o in inputs.values()
    )


def test_an_existing_export_is_never_overwritten(release, key_file: Path) -> None:
    folder = release["root"] / "again"
    folder.mkdir()
    (folder / "patid_mapping.csv").write_text("id_old,id_new\nmine,kept\n")
    result = deid("reidentify", "--key-file", key_file, release["records"], "--export", folder)
    assert result.returncode == 2
    assert "already exist" in result.stderr and "patid_mapping.csv" in result.stderr
    assert (folder / "patid_mapping.csv").read_text() == "id_old,id_new\nmine,kept\n"
    assert not (folder / "uid_mapping.csv").exists()


def test_a_wrong_key_exports_nothing(release, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    other.write_text("ab" * 32 + "\n")
    other.chmod(0o600)
    folder = tmp_path / "validation"
    result = deid("reidentify", "--key-file", other, release["records"], "--export", folder)
    assert result.returncode == 2
    assert not folder.exists()
    line = json.loads(
        (release["records"] / "audit" / "reidentify-queries.jsonl").read_text().splitlines()[-1]
    )
    assert line["result"] == "wrong-key"
