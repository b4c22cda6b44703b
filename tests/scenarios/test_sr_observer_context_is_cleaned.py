"""A user releases SRs made by other people's tools: a TID 1500 report made with highdicom that
carries person and device observer context, subject and procedure context, a Tracking Identifier
naming the physician and a free-text finding naming a physician and a street address; and the
DCMTK-made reports pydicom ships (`reportsi.dcm`, `test-SR.dcm`). Every identity is gone from the
released bytes, every measurement, coordinate and reference is intact, highdicom reads the report
back as a TID 1500 Measurement Report, and nothing is quarantined."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from support import deid, phi_found, run_args, to_bytes

from deid.profile.loader import load_profile
from deid.synthetic import SR_CLASSES, landmark_sr
from deid.synthetic.sr import context_values

PROFILES = ("vghtpe", "ps3.15-basic")
#: pydicom's DCMTK-made reports (reportsi_with_empty_number_tags.dcm shares reportsi's SOP
#: Instance UID, so each goes into an output of its own).
REAL_REPORTS = ("reportsi.dcm", "reportsi_with_empty_number_tags.dcm", "test-SR.dcm")


def items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    found = []
    for item in ds.get("ContentSequence", []):
        found.append(item)
        found += items(item)
    return found


def structure(ds: pydicom.Dataset, codes: bool = True) -> list[tuple]:
    """Measurements, coordinates, references (by their SOP class: instance UIDs are remapped) and
    by-reference relationships, in tree order; with ``codes``, codes and containers too."""
    out: list[tuple] = []
    for item in items(ds):
        kind = str(item.get("ValueType", "by-reference"))
        if kind == "NUM":
            out.append((kind, [str(v.NumericValue) for v in item.get("MeasuredValueSequence", [])]))
        elif kind in ("SCOORD", "SCOORD3D"):
            out.append((kind, item.GraphicType, tuple(float(v) for v in item.GraphicData)))
        elif kind == "TCOORD":
            out.append((kind, item.TemporalRangeType))
        elif kind == "CODE" and codes:
            code = item.ConceptCodeSequence[0]
            out.append((kind, code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning))
        elif kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
            out.append((kind, [r.ReferencedSOPClassUID for r in item.ReferencedSOPSequence]))
        elif kind == "by-reference":  # what it points at (positions shift when items go)
            ident = [int(v) for v in item.ReferencedContentItemIdentifier]
            out.append((kind, str(target(ds, ident).get("ValueType", ""))))
        elif kind == "CONTAINER" and codes:
            out.append((kind,))
    return out


def target(ds: pydicom.Dataset, ident: list[int]) -> pydicom.Dataset:
    """The content item a Referenced Content Item Identifier names (the root is 1)."""
    node = ds
    for number in ident[1:]:
        node = node.ContentSequence[number - 1]
    return node


def free_values(ds: pydicom.Dataset) -> set[str]:
    """Every TEXT and PNAME value of the content tree."""
    values = {str(i.TextValue) for i in items(ds) if i.get("ValueType") == "TEXT"}
    return values | {str(i.PersonName) for i in items(ds) if i.get("ValueType") == "PNAME"}


def run(tmp_path: Path, name: str, files: dict[str, bytes], profile: str, key_file: Path) -> Path:
    source = tmp_path / f"in-{name}"
    source.mkdir()
    for file_name, data in files.items():
        (source / file_name).write_bytes(data)
    out = tmp_path / f"out-{name}"
    result = deid(*run_args(source, out, key_file, "--profile", profile))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / f"out-{name}-quarantine").exists() or not list(
        (tmp_path / f"out-{name}-quarantine").rglob("reason.json"))
    return out


@pytest.fixture(scope="module")
def reports(landmark_study, patient) -> dict[str, bytes]:
    """The three SR classes with every observer, subject and procedure context planted."""
    images = landmark_study[0]
    return {kind: to_bytes(landmark_sr(patient, images, sop_class=kind, every_context=True))
            for kind in SR_CLASSES}


@pytest.fixture(scope="module")
def released(reports, tmp_path_factory, key_file) -> dict[tuple[str, str], tuple[bytes, bytes]]:
    """(profile, SR class) -> (input bytes, released bytes), released by `deid run`."""
    pairs = {}
    for profile in PROFILES:
        root = tmp_path_factory.mktemp(f"context-{profile}")
        out = run(root, "sr", {f"{kind}.dcm": data for kind, data in reports.items()}, profile,
                  key_file)
        for path in out.rglob("*.dcm"):
            data = path.read_bytes()
            uid = pydicom.dcmread(BytesIO(data)).SOPClassUID
            kind = next(k for k, v in SR_CLASSES.items() if v == uid)
            pairs[(profile, kind)] = (reports[kind], data)
    assert len(pairs) == len(PROFILES) * len(SR_CLASSES)
    return pairs


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", sorted(SR_CLASSES))
def test_every_planted_identity_is_gone(released, patient, profile: str, kind: str) -> None:
    source, data = released[(profile, kind)]
    planted = context_values(patient)
    assert all(value.encode() in source for value in planted.values())  # they were there
    assert [role for role, value in planted.items() if value.encode("utf-8") in data] == []
    assert phi_found(data, patient) == []


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", sorted(SR_CLASSES))
def test_measurements_coordinates_and_references_are_intact(released, profile, kind) -> None:
    source, data = released[(profile, kind)]
    before, after = pydicom.dcmread(BytesIO(source)), pydicom.dcmread(BytesIO(data))
    assert structure(after) == structure(before)
    finding = [i for i in items(after) if i.ValueType == "TEXT"
               and i.ConceptNameCodeSequence[0].CodeMeaning == "Finding"]
    assert [str(i.TextValue) for i in finding] == ["REMOVED"]  # an image reference beneath it
    assert finding[0].ContentSequence[0].ValueType == "IMAGE"


@pytest.mark.parametrize("profile", PROFILES)
def test_highdicom_reads_the_report_back(released, profile, key) -> None:
    for kind in SR_CLASSES:
        source, data = released[(profile, kind)]
        sr = hd.sr.srread(BytesIO(data))
        before = hd.sr.srread(BytesIO(source)).content.get_planar_roi_measurement_groups()
        groups = sr.content.get_planar_roi_measurement_groups()
        assert len(groups) == len(before) == (30 if kind == "comprehensive3d" else 15)
        for old, new in zip(before, groups):
            assert new.roi.GraphicData == old.roi.GraphicData
            assert new.tracking_identifier != old.tracking_identifier
            assert new.tracking_uid != old.tracking_uid


def test_one_lesion_keeps_one_tracking_identifier_across_objects(released) -> None:
    """The same landmark in every SR class and both profiles: one pseudonym, one remapped UID per
    (landmark, 2D/3D) as in the input."""
    def tracking(data: bytes) -> list[tuple[str, str]]:
        groups = hd.sr.srread(BytesIO(data)).content.get_planar_roi_measurement_groups()
        return [(g.tracking_identifier, g.tracking_uid) for g in groups]

    first = {}
    for (profile, kind), (source, data) in released.items():
        for (old_id, old_uid), (new_id, new_uid) in zip(tracking(source), tracking(data)):
            assert first.setdefault(old_id, new_id) == new_id, (profile, kind)
            assert first.setdefault(old_uid, new_uid) == new_uid, (profile, kind)


def test_subject_and_procedure_context_match_the_released_header(released) -> None:
    """vghtpe: Subject ID and Accession Number are the header's pseudonyms; names get a dummy."""
    _, data = released[("vghtpe", "comprehensive3d")]
    ds = pydicom.dcmread(BytesIO(data))
    values = {i.ConceptNameCodeSequence[0].CodeMeaning: i for i in items(ds)}
    assert str(values["Subject ID"].TextValue) == str(ds.PatientID)
    assert str(values["Subject Name"].PersonName) == "DEIDENTIFIED"
    assert str(values["Accession Number"].TextValue) == str(ds.AccessionNumber)
    assert "Placer Number" not in values and "Filler Number" not in values
    assert values["Procedure Study Instance UID"].UID == ds.StudyInstanceUID


@pytest.mark.parametrize("profile", PROFILES)
def test_pydicoms_dcmtk_reports_are_released_without_their_text(tmp_path, key_file, profile) -> None:
    """Before: quarantined as content-item-not-removable (a TEXT with an image or coordinates
    beneath it). Now released; no TEXT or name of the input is left (none of their concepts is
    kept), and the rest of the tree is as it was."""
    kept = {c.meaning for c in load_profile(profile).kept_text.values()}
    for number, name in enumerate(REAL_REPORTS):
        source = Path(get_testdata_file(name))
        out = run(tmp_path, f"{number}", {name: source.read_bytes()}, profile, key_file)
        written = list(out.rglob("*.dcm"))
        assert len(written) == 1, name
        before, after = pydicom.dcmread(source), pydicom.dcmread(written[0])
        assert structure(after, codes=False) == structure(before, codes=False), name
        left = free_values(after) & free_values(before)
        assert left == set(), (name, left)
        for item in items(after):
            if item.get("ValueType") == "TEXT":
                meaning = item.ConceptNameCodeSequence[0].CodeMeaning
                assert str(item.TextValue) == "REMOVED" or meaning in kept, name
        records = tmp_path / f"out-{number}-records" / "summary.json"
        assert json.loads(records.read_text())["quarantined"] == 0
