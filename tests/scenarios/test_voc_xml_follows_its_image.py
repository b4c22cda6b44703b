"""A user releases Lung-PET-CT-Dx CT images with the PASCAL VOC tumour boxes named after them (and
landmark lists that name images by UID): the annotations come out with the images' new UIDs and
de-identified names, whether they travel with their images or in another run."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pydicom
import pytest
from support import deid, phi_found, run_args, tree

from deid.synthetic import four_phase_ct, write_datasets
from deid.synthetic.fused import lung_patient
from deid.synthetic.sidecars import landmark_csv, landmark_json, tumour_box, write_voc


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("voc")
    patient = lung_patient("E", 21)
    images = four_phase_ct(patient, slices=4, size=64)["P"]
    subject = f"{patient.patient_id} {patient.display_name}"
    write_datasets(images, root / "images" / subject)
    annotated = images[1:3]
    for image in annotated:
        write_voc(root / "annotations" / subject, image, patient)
    (root / "annotations" / subject / "landmarks.csv").write_text(landmark_csv(images, patient))
    (root / "annotations" / subject / f"{patient.patient_id}.json").write_text(landmark_json(images, patient))
    profile = ("--profile", "lung-pet-ct-dx")
    together = deid(*run_args([root / "images", root / "annotations"], root / "out", key_file, *profile))
    # the annotations first, on their own, then the images in another run (another records folder)
    apart = [deid(*run_args(root / "annotations", root / "apart", key_file, *profile, "--records", root / "r1")),
             deid(*run_args(root / "images", root / "apart", key_file, *profile, "--records", root / "r2",
                            "--workers", "2"))]
    return {"root": root, "patient": patient, "images": images, "annotated": annotated,
            "together": together, "apart": apart}


def _released_images(out: Path) -> dict[str, Path]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in out.rglob("*.dcm")}


def test_images_and_annotations_are_all_released(scene) -> None:
    result = scene["together"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 objects: 8 written" in result.stdout
    assert [r.returncode for r in scene["apart"]] == [0, 0]


def test_each_voc_file_is_named_by_its_image_new_uid_and_points_at_it(scene) -> None:
    out = scene["root"] / "out"
    released = _released_images(out)
    xml_files = sorted((out / "annotations").glob("*.xml"))
    assert len(xml_files) == len(scene["annotated"])
    for path in xml_files:
        root = ET.parse(path).getroot()
        uid = path.stem
        assert uid in released
        assert root.findtext("filename") == uid
        assert root.findtext("path") == f"{uid}.dcm"  # the path reduced to the de-identified name
        assert root.findtext("folder") == ""
        image = pydicom.dcmread(released[uid])
        original = next(i for i in scene["annotated"] if int(i.InstanceNumber) == int(image.InstanceNumber))
        box = tuple(int(root.findtext(f"object/bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
        assert box == tumour_box(original)
        assert root.findtext("object/name") == "E"  # the diagnosis label is kept
        assert root.findtext("size/width") == str(image.Columns)


def test_landmark_lists_name_released_images(scene) -> None:
    out = scene["root"] / "out"
    released = _released_images(out)
    series = {str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID) for p in released.values()}
    (csv_file,) = (out / "annotations").glob("*.csv")
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert len(rows) == 5
    for row in rows:
        assert row["SOPInstanceUID"] in released and row["SeriesInstanceUID"] in series
        assert row["file"] == f"{row['SOPInstanceUID']}.dcm"
    (json_file,) = (out / "annotations").glob("*.json")
    data = json.loads(json_file.read_text())
    assert all(item["SOPInstanceUID"] in released for item in data["landmarks"])
    assert data["StudyInstanceUID"] == pydicom.dcmread(next(iter(released.values()))).StudyInstanceUID
    assert [len(item["point"]) for item in data["landmarks"]] == [3] * 5


def test_nothing_of_the_patient_in_the_annotations_or_their_names(scene) -> None:
    files = tree(scene["root"] / "out")
    assert any(name.startswith("annotations/") for name in files)
    for relative, data in files.items():
        assert phi_found(relative, scene["patient"]) == [], relative
        assert phi_found(data, scene["patient"]) == [], relative
        assert b"/home/" not in data and b"Lung_Dx" not in data


def test_separate_runs_give_the_same_annotations_and_images(scene) -> None:
    assert tree(scene["root"] / "apart") == tree(scene["root"] / "out")


def test_a_rerun_skips_the_annotations_and_a_second_annotation_of_one_image_is_not_lost(scene, key_file) -> None:
    root, patient = scene["root"], scene["patient"]
    again = deid(*run_args([root / "images", root / "annotations"], root / "out", key_file,
                           "--profile", "lung-pet-ct-dx"))
    assert again.returncode == 0 and "8 skipped" in again.stdout, again.stdout
    before = tree(root / "out")
    second = write_voc(root / "second-reader", scene["annotated"][0], patient, label="A")
    result = deid(*run_args(root / "second-reader", root / "out", key_file, "--profile", "lung-pet-ct-dx"))
    assert result.returncode == 3 and "sidecar-name-collision 1" in result.stdout
    assert tree(root / "out") == before  # the first reader's boxes are still there
    kept = [p for p in (root / "out-quarantine").rglob("original.xml") if p.read_bytes() == second.read_bytes()]
    assert len(kept) == 1
