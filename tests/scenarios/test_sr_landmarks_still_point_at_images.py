"""A user releases a CT series and its landmark SRs (Enhanced, Comprehensive, Comprehensive 3D) in
separate runs: highdicom reads each SR back, every image and evidence reference points at a released
CT instance of the same SOP class, landmarks keep their coordinates and codes, and the content tree
is clean (observer name, dates, UIDREFs; TEXT only of the concepts the profile keeps, or the report
quarantined when the profile says so)."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from support import deid, phi_found, released_headers, run_args, unresolved_references

from deid.synthetic import SR_CLASSES, write_datasets
from deid.synthetic.sr import HARMLESS_TEXT, LANDMARKS

SR_UIDS = set(SR_CLASSES.values())


def items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    found = []
    for item in ds.get("ContentSequence", []):
        found.append(item)
        found += items(item)
    return found


def landmarks(path: Path | bytes) -> list[tuple]:
    """(finding site code, graphic type, coordinates) of every landmark, via highdicom."""
    sr = hd.sr.srread(BytesIO(path) if isinstance(path, bytes) else path)
    found = []
    for group in sr.content.get_planar_roi_measurement_groups():
        site = group.finding_sites[0].value
        roi = group.roi
        found.append(
            (
                site.value,
                site.scheme_designator,
                site.meaning,
                roi.value_type.value,
                tuple(float(v) for v in roi.GraphicData),
            )
        )
    return found


@pytest.fixture(scope="module")
def released(landmark_study, tmp_path_factory, key_file) -> dict[str, object]:
    """The CT released in one run, the three SRs in a second run into the same output."""
    images, reports = landmark_study
    root = tmp_path_factory.mktemp("sr-scenario")
    ct_in = root / "incoming-ct"
    write_datasets(images, ct_in)
    sr_in = root / "incoming-sr"
    sr_in.mkdir()
    for kind, data in reports.items():
        (sr_in / f"SR_{kind}.dcm").write_bytes(data)
    out = root / "out"
    first = deid(*run_args(ct_in, out, key_file))
    assert first.returncode == 0, first.stderr
    second = deid(*run_args(sr_in, out, key_file))
    assert second.returncode == 0, second.stderr
    outputs: dict[str, Path] = {}
    released_classes: dict[str, str] = {}
    frames: set[str] = set()
    for path in out.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        released_classes[ds.SOPInstanceUID] = ds.SOPClassUID
        if ds.SOPClassUID in SR_UIDS:
            outputs[next(k for k, v in SR_CLASSES.items() if v == ds.SOPClassUID)] = path
        else:
            frames.add(ds.FrameOfReferenceUID)
    return {
        "out": out,
        "srs": outputs,
        "released": released_classes,
        "frames": frames,
        "reports": reports,
    }


def test_every_sr_class_is_released_and_highdicom_reads_it(released) -> None:
    assert set(released["srs"]) == set(SR_CLASSES)
    for kind, path in released["srs"].items():
        sr = hd.sr.srread(path)
        assert sr.SOPClassUID == SR_CLASSES[kind]
        assert len(sr.content.get_planar_roi_measurement_groups()) == (
            30 if kind == "comprehensive3d" else 15
        )


def test_image_and_evidence_references_point_at_released_instances(released) -> None:
    classes = released["released"]
    for kind, path in released["srs"].items():
        ds = pydicom.dcmread(path)
        references = [ref for item in items(ds) for ref in item.get("ReferencedSOPSequence", [])]
        for evidence in ds.CurrentRequestedProcedureEvidenceSequence:
            for series in evidence.ReferencedSeriesSequence:
                references += list(series.ReferencedSOPSequence)
        for evidence in ds.get("PertinentOtherEvidenceSequence", []):
            for series in evidence.ReferencedSeriesSequence:
                references += list(series.ReferencedSOPSequence)
        assert len(references) >= 16, kind
        for ref in references:
            assert classes.get(ref.ReferencedSOPInstanceUID) == ref.ReferencedSOPClassUID, kind
        for item in items(ds):
            if item.ValueType == "SCOORD3D":
                assert item.ReferencedFrameOfReferenceUID in released["frames"]
        library = [
            i.UID
            for i in items(ds)
            if i.ConceptNameCodeSequence[0].CodeMeaning == "Frame of Reference UID"
        ]
        assert set(library) <= released["frames"]


def test_nothing_the_released_objects_reference_dangles(released) -> None:
    """The project's reference finder agrees: instances, series, study, frames of reference."""
    assert unresolved_references(released_headers(released["out"])) == []


def test_landmark_coordinates_and_codes_are_unchanged(released) -> None:
    for kind, path in released["srs"].items():
        assert landmarks(path) == landmarks(released["reports"][kind]), kind


def test_the_content_tree_is_clean(released, patient) -> None:
    for kind, path in released["srs"].items():
        ds = pydicom.dcmread(path)
        before = pydicom.dcmread(BytesIO(released["reports"][kind]))
        assert {str(i.PersonName) for i in items(ds) if i.ValueType == "PNAME"} == {"DEIDENTIFIED"}
        assert {i.Date[4:] for i in items(ds) if i.ValueType == "DATE"} == {"0101"}
        assert {i.DateTime[4:8] for i in items(ds) if i.ValueType == "DATETIME"} == {"0101"}
        old_uids = {i.UID for i in items(before) if i.ValueType == "UIDREF"}
        new_uids = {i.UID for i in items(ds) if i.ValueType == "UIDREF"}
        assert len(new_uids) == len(old_uids) and not new_uids & old_uids
        texts = [str(i.TextValue) for i in items(ds) if i.ValueType == "TEXT"]
        assert HARMLESS_TEXT not in texts  # vghtpe does not keep comments (keep_text)
        assert not [t for t in texts if any(lm.code in t for lm in LANDMARKS)]  # pseudonyms
        assert not [t for t in texts if patient.patient_id in t or patient.display_name in t]
        assert phi_found(path.read_bytes(), patient) == [], kind


def test_a_profile_can_quarantine_a_report_with_text_it_does_not_keep(
    landmark_study, tmp_path, key_file
) -> None:
    profile = tmp_path / "strict.yaml"
    profile.write_text(
        "name: strict\nextends: vghtpe\nstructured_content:\n  text_not_kept: quarantine\n"
    )
    source = tmp_path / "in"
    source.mkdir()
    (source / "SR.dcm").write_bytes(landmark_study[1]["comprehensive"])
    out = tmp_path / "out"
    result = deid(*run_args(source, out, key_file, "--profile", profile))
    assert result.returncode == 3, result.stderr
    assert list(out.rglob("*.dcm")) == []
    reasons = [
        json.loads(p.read_text()) for p in (tmp_path / "out-quarantine").rglob("reason.json")
    ]
    assert [r["code"] for r in reasons] == ["content-text-not-kept"]
    assert reasons[0]["path"].endswith("(0040,A160)")
