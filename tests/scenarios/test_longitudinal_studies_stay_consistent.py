"""A user releases two studies of one patient, half a year apart, in separate runs with the same
key: the patient keeps one released ID and name, each study keeps its own consistent UIDs, and the
dates of both are generalised by the same rule."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from support import SIZE, deid, phi_found, released_headers, run_args, tree, unresolved_references

from deid.synthetic import later_study, write_sample_study


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory, patient, key_file: Path):
    root = tmp_path_factory.mktemp("longitudinal")
    follow_up = later_study(patient)
    released = {}
    for name, who in (("first", patient), ("second", follow_up)):
        write_sample_study(root / f"{name}-in", who, slices=2, size=SIZE, seg=True)
        out = root / f"{name}-out"
        result = deid(*run_args(root / f"{name}-in", out, key_file, "--records", root / f"{name}-rec"))
        assert result.returncode == 0, result.stdout + result.stderr
        released[name] = (who, out, released_headers(out))
    return released


def _one(headers: dict[str, pydicom.Dataset], keyword: str) -> str:
    values = {str(ds[keyword].value) for ds in headers.values()}
    assert len(values) == 1, keyword
    return values.pop()


def test_the_patient_keeps_one_released_id_and_name(studies) -> None:
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"):
        assert _one(studies["first"][2], keyword) == _one(studies["second"][2], keyword), keyword
    first_ids = {p.parts[0] for p in map(Path, tree(studies["first"][1]))}
    assert first_ids == {p.parts[0] for p in map(Path, tree(studies["second"][1]))}


def test_each_study_keeps_its_own_consistent_uids(studies) -> None:
    first, second = studies["first"][2], studies["second"][2]
    assert _one(first, "StudyInstanceUID") != _one(second, "StudyInstanceUID")
    assert _one(first, "AccessionNumber") != _one(second, "AccessionNumber")
    frames = [{ds.FrameOfReferenceUID for ds in h.values() if "FrameOfReferenceUID" in ds}
              for h in (first, second)]
    assert len(frames[0]) == len(frames[1]) == 1 and frames[0] != frames[1]
    assert not {ds.SeriesInstanceUID for ds in first.values()} & {ds.SeriesInstanceUID for ds in
                                                                  second.values()}
    for headers in (first, second):  # each study's RTSS and SEG point into their own study
        assert unresolved_references(headers) == []


def test_dates_are_generalised_alike(studies) -> None:
    for who, _out, headers in studies.values():
        year = who.study_date[:4]
        assert _one(headers, "StudyDate") == f"{year}0101"
        assert {ds.SeriesDate for ds in headers.values() if ds.Modality == "CT"} == {f"{year}0101"}
        assert _one(headers, "PatientBirthDate") == f"{who.birth_date[:4]}0101"
    assert studies["first"][0].study_date[:4] != studies["second"][0].study_date[:4]


def test_neither_output_names_the_patient(studies) -> None:
    for who, out, _headers in studies.values():
        for relative, data in tree(out).items():
            assert phi_found(relative, who) == [] and phi_found(data, who) == [], relative
            assert who.study_date.encode() not in data, relative
