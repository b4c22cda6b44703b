"""A user releases objects whose kept free text names people, places and IDs that the profile removes
elsewhere in the object (issue 10, item 6): each name goes out replaced by the placeholder and is
counted; an identity seen only in another object of the same study changes no byte, but the report
(with the key) and `deid verify --records --key-file` flag it; no token is written in clear."""

from __future__ import annotations

import copy
import json
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from support import SIZE, deid, phi_found, run_args, to_bytes

from deid.synthetic import four_phase_ct, rtss, write_datasets
from deid.synthetic.identity import SyntheticPatient

STREET = "Zhongxiao East Road"  # only in the hospital's deny-list
OBSERVER = "HSIEH^CHIA-HAO"  # only in the SR's Person Observer Name item
PLACEHOLDER = "[removed]"


def family(name: str) -> str:
    return name.split("^")[0]


def given(name: str) -> str:
    return name.split("^")[1]


def ct_naming_staff(patient: SyntheticPatient) -> Dataset:
    """A CT slice whose descriptions name its referring physician, operator, institution and a street."""
    ds = four_phase_ct(patient, slices=1, size=SIZE)["P"][0]
    ds.StudyDescription = f"CT liver for Dr {family(patient.referring_physician)}"
    ds.SeriesDescription = f"Port. {given(patient.operator)}"
    ds.ImageComments = f"Sent from {patient.institution}, {STREET} wing"
    return ds


def sr_naming_its_observer(landmark_study) -> Dataset:
    ds = dcmread(BytesIO(landmark_study[1]["comprehensive"]))
    observer = next(i for i in ds.ContentSequence if i.ValueType == "PNAME"
                    and i.ConceptNameCodeSequence[0].CodeMeaning == "Person Observer Name")
    observer.PersonName = OBSERVER
    comment = next(i for i in ds.ContentSequence if i.ValueType == "TEXT"
                   and i.ConceptNameCodeSequence[0].CodeMeaning == "Comment")
    comment.TextValue = f"Landmarks checked by {given(OBSERVER)} {family(OBSERVER)}."
    return ds


@pytest.fixture(scope="module")
def released(tmp_path_factory, patient, key_file: Path, landmark_study) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("free-text")
    source = folder / "incoming"
    images = four_phase_ct(patient, slices=2, size=SIZE)["P"]
    structure = rtss(patient, images, roi_name=family(patient.name))
    write_datasets([ct_naming_staff(patient), structure, sr_naming_its_observer(landmark_study)],
                   source, ["CT.dcm", "RTSS.dcm", "SR.dcm"])
    deny = folder / "deny.txt"
    deny.write_text("# streets\nZhongxiao East Road\n\nXinyi Road\n", encoding="utf-8")
    site = folder / "site.yaml"  # vghtpe keeps no SR comment: this site keeps them (then cleans them)
    site.write_text('name: site\nversion: "1"\nextends: vghtpe\nstructured_content:\n  keep_text:\n'
                    '    - {code: "121106", scheme: DCM, meaning: Comment}\n', encoding="utf-8")
    out, records = folder / "out", folder / "records"
    result = deid(*run_args(source, out, key_file, "--records", records, "--deny-list", deny,
                            "--profile", site))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identity values replaced in kept free text" in result.stdout
    report = deid("report", records, "--out", folder / "report")
    assert report.returncode == 0, report.stderr
    return {"out": out, "records": records, "report": folder / "report", "folder": folder}


def outputs(out: Path) -> dict[str, Dataset]:
    found = {}
    for path in out.rglob("*.dcm"):
        ds = dcmread(path)
        found[str(ds.Modality)] = ds
    return found


def test_the_ct_descriptions_go_out_with_the_names_replaced(released, patient) -> None:
    ct = outputs(released["out"])["CT"]
    assert ct.StudyDescription == f"CT liver for Dr {PLACEHOLDER}"
    assert ct.SeriesDescription == f"Port. {PLACEHOLDER}"
    assert ct.ImageComments == f"Sent from {PLACEHOLDER}, {PLACEHOLDER} wing"


def test_the_roi_name_holding_the_family_name_is_replaced(released, patient) -> None:
    structure = outputs(released["out"])["RTSTRUCT"]
    assert [str(roi.ROIName) for roi in structure.StructureSetROISequence] == [PLACEHOLDER]
    assert [str(o.ROIObservationLabel) for o in structure.RTROIObservationsSequence
            if "ROIObservationLabel" in o] in ([], [PLACEHOLDER])
    assert structure.SeriesDescription == f"{PLACEHOLDER} contours"


def test_the_sr_comment_naming_its_observer_is_replaced(released) -> None:
    sr = outputs(released["out"])["SR"]
    texts = [str(i.TextValue) for i in sr.ContentSequence if i.ValueType == "TEXT"]
    assert f"Landmarks checked by {PLACEHOLDER}." in texts
    assert not any(family(OBSERVER).lower() in t.lower() for t in texts)


def test_the_summary_and_the_report_count_the_replacements(released) -> None:
    summary = json.loads((released["records"] / "summary.json").read_text())
    replaced = summary["text_replaced"]
    # Series Description: the CT's operator, and the RTSS's "<ROI name> contours"
    assert replaced["StudyDescription"] == 1 and replaced["SeriesDescription"] == 2
    assert replaced["ImageComments"] == 2 and replaced["ROIName"] >= 1 and replaced["TextValue"] >= 1
    assert summary["deny_list_entries"] == 2
    data = json.loads((released["report"] / "report.json").read_text())
    rows = {row["attribute"]: row for row in data["review"]["replaced"]}
    assert rows["ImageComments"] == {"attribute": "ImageComments", "replaced": 2, "objects": 1}
    assert data["totals"]["identity_values_replaced"] == sum(replaced.values())
    assert data["review"]["flagged"] == []


def test_no_token_is_written_in_clear_in_the_records_or_the_report(released, patient) -> None:
    planted = [family(patient.referring_physician), given(patient.operator), patient.institution, STREET,
               "Xinyi Road", family(OBSERVER), family(patient.name)]
    files = [p for p in (*released["records"].rglob("*"), *released["report"].rglob("*")) if p.is_file()]
    assert any(p.parent.name == "reid" for p in files)  # the tokens are there, encrypted
    for path in files:
        data = path.read_bytes()
        assert [value for value in planted if value.encode() in data] == [], path.name
        assert phi_found(data, patient) == [], path.name
    for path in released["out"].rglob("*"):
        if path.is_file():
            assert [value for value in planted if value.encode() in path.read_bytes()] == [], path.name


def test_an_identity_from_another_object_changes_no_byte_but_is_flagged(tmp_path: Path, patient,
                                                                       key_file: Path) -> None:
    """A's header names its referring physician; B's comment names him, but B's header does not."""
    a, b = four_phase_ct(patient, slices=2, size=SIZE)["P"]
    physician = patient.referring_physician
    b = copy.deepcopy(b)
    b.ReferringPhysicianName = ""
    assert family(physician) not in to_bytes(b).decode("latin-1")
    b.ImageComments = f"ask {family(physician)} about the lesion"
    write_datasets([b], tmp_path / "b-alone", ["B.dcm"])
    write_datasets([a, b], tmp_path / "both", ["A.dcm", "B.dcm"])
    alone, both = tmp_path / "out-alone", tmp_path / "out-both"
    assert deid(*run_args(tmp_path / "b-alone", alone, key_file)).returncode == 0
    assert deid(*run_args(tmp_path / "both", both, key_file)).returncode == 0
    (b_alone,) = alone.rglob("*.dcm")
    b_both = next(p for p in both.rglob("*.dcm") if p.name == b_alone.name)
    assert b_both.read_bytes() == b_alone.read_bytes()  # B's bytes do not depend on A
    assert dcmread(b_both).ImageComments == f"ask {family(physician)} about the lesion"

    records = tmp_path / "out-both-records"
    verified = deid("verify", both, "--records", records, "--key-file", key_file)
    assert verified.returncode == 4, verified.stdout + verified.stderr
    findings = [line.split("\t") for line in verified.stdout.splitlines()]
    assert [(f[0], f[1], f[2]) for f in findings] == [(str(b_both.relative_to(both)), "(0020,4000)",
                                                       "identity-in-text")]
    assert family(physician) not in verified.stdout + verified.stderr

    plain = deid("report", records, "--out", tmp_path / "report-plain")
    keyed = deid("report", records, "--out", tmp_path / "report-keyed", "--key-file", key_file)
    assert plain.returncode == 0 and keyed.returncode == 0, plain.stderr + keyed.stderr
    without = json.loads((tmp_path / "report-plain" / "report.json").read_text())
    with_key = json.loads((tmp_path / "report-keyed" / "report.json").read_text())
    assert without["review"]["flagged"] == []
    assert [(row["attribute"], row["flagged_objects"]) for row in with_key["review"]["flagged"]] == [
        ("ImageComments", 1)]
    assert with_key["totals"]["flagged_by_other_objects"] == 1


def test_released_bytes_do_not_depend_on_the_order(tmp_path: Path, patient, key_file: Path,
                                                   landmark_study) -> None:
    objects = [ct_naming_staff(patient), *four_phase_ct(patient, slices=2, size=SIZE)["A"],
               sr_naming_its_observer(landmark_study)]
    names = [f"{i}.dcm" for i in range(len(objects))]
    write_datasets(objects, tmp_path / "forward" / "x", names)
    write_datasets(objects[::-1], tmp_path / "backward" / "x", names)  # the walk meets them reversed
    trees = []
    for order in ("forward", "backward"):
        out = tmp_path / f"out-{order}"
        assert deid(*run_args(tmp_path / order, out, key_file)).returncode == 0
        trees.append({str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.dcm")})
    assert trees[0] == trees[1] and len(trees[0]) == len(objects)
