"""Side-car annotation files beside the DICOM, naming images by UID, with identity in their paths.

PASCAL VOC XML as labelImg writes it (Lung-PET-CT-Dx: one file per annotated image, named by its
SOP Instance UID, the tumour box in pixels), and landmark lists as CSV and JSON with UID columns.
``extra`` variants add a field that holds identity, which deid must refuse to release.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.phantom import TUMOUR_CENTRE_MM, TUMOUR_RADIUS_MM

#: Landmark names of the lists (pelvic landmarks, as CTPEL lists them).
LANDMARKS = ("left ASIS", "right ASIS", "pubic symphysis", "sacral promontory", "coccyx tip")


def tumour_box(image: Dataset) -> tuple[int, int, int, int]:
    """(xmin, ymin, xmax, ymax) in pixels of the phantom's tumour on a CT slice (its full extent)."""
    x0, y0 = float(image.ImagePositionPatient[0]), float(image.ImagePositionPatient[1])
    spacing = float(image.PixelSpacing[0])
    cx, cy, _ = TUMOUR_CENTRE_MM

    def pixel(value: float, origin: float) -> int:
        return round((value - origin) / spacing)

    r = TUMOUR_RADIUS_MM
    return pixel(cx - r, x0), pixel(cy - r, y0), pixel(cx + r, x0), pixel(cy + r, y0)


def _original_path(patient: SyntheticPatient, image: Dataset) -> str:
    """Where the annotator's copy of the image was: a path full of identity."""
    return (f"/home/radiology/{patient.display_name}/{patient.patient_id}/{patient.study_date}-PET-CT/"
            f"{int(image.get('InstanceNumber', 1))}-{int(image.get('SeriesNumber', 1)):02d}.dcm")


def voc_xml(image: Dataset, patient: SyntheticPatient, *, label: str | None = None, extra: bool = False) -> str:
    """The labelImg PASCAL VOC annotation of ``image``: <filename> is its SOP Instance UID, <folder>
    and <path> name the patient; one object (``label``, default the Patient ID's group letter)."""
    xmin, ymin, xmax, ymax = tumour_box(image)
    name = label or next((c for c in patient.patient_id.split("-")[-1] if c in "ABEG"), "A")
    owner = f"\t<owner>\n\t\t<name>{patient.display_name}</name>\n\t</owner>\n" if extra else ""
    return (
        "<annotation>\n"
        f"\t<folder>{patient.patient_id}</folder>\n"
        f"\t<filename>{image.SOPInstanceUID}</filename>\n"
        f"\t<path>{_original_path(patient, image)}</path>\n"
        "\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
        f"{owner}"
        f"\t<size>\n\t\t<width>{image.Columns}</width>\n\t\t<height>{image.Rows}</height>\n"
        f"\t\t<depth>3</depth>\n\t</size>\n"
        "\t<segmented>0</segmented>\n"
        "\t<object>\n"
        f"\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        "\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n"
        f"\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>\n"
        "\t</object>\n"
        "</annotation>\n"
    )


def write_voc(folder: str | Path, image: Dataset, patient: SyntheticPatient, **kwargs: object) -> Path:
    """Write :func:`voc_xml` as ``<SOP Instance UID>.xml`` in ``folder`` (the collection's naming)."""
    path = Path(folder) / f"{image.SOPInstanceUID}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(voc_xml(image, patient, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    return path


def _landmark_rows(images: Sequence[Dataset], patient: SyntheticPatient) -> list[dict[str, str]]:
    rows = []
    for number, name in enumerate(LANDMARKS):
        image = images[number % len(images)]
        position = image.ImagePositionPatient
        rows.append({
            "SOPInstanceUID": str(image.SOPInstanceUID),
            "SeriesInstanceUID": str(image.SeriesInstanceUID),
            "landmark": name,
            "x": f"{float(position[0]) + 40.5 + 10 * number:.2f}",
            "y": f"{float(position[1]) + 60.25 + 5 * number:.2f}",
            "z": f"{float(position[2]):.2f}",
            "file": f"{patient.patient_id}/{image.SOPInstanceUID}.dcm",
        })
    return rows


def landmark_csv(images: Sequence[Dataset], patient: SyntheticPatient, *, extra: bool = False) -> str:
    """A landmark list (UID columns, landmark name, x/y/z in mm, the file's path under the patient's ID);
    ``extra`` adds a ``patient_name`` column."""
    rows = _landmark_rows(images, patient)
    if extra:
        for row in rows:
            row["patient_name"] = patient.name
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def landmark_json(images: Sequence[Dataset], patient: SyntheticPatient, *, extra: bool = False) -> str:
    """The landmark list as JSON: ``{"StudyInstanceUID": ..., "landmarks": [{..., "point": [x, y, z]}]}``."""
    rows = _landmark_rows(images, patient)
    data: dict[str, object] = {
        "StudyInstanceUID": str(images[0].StudyInstanceUID),
        "landmarks": [{"SOPInstanceUID": r["SOPInstanceUID"], "landmark": r["landmark"],
                       "point": [float(r["x"]), float(r["y"]), float(r["z"])]} for r in rows],
    }
    if extra:
        data["operator"] = patient.operator
    return json.dumps(data, indent=2) + "\n"


def odd_sidecars(folder: str | Path, image: Dataset, patient: SyntheticPatient) -> dict[Path, str]:
    """Side-cars deid must not release, written into ``folder``: path -> the expected reason code."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    uid = str(image.SOPInstanceUID)
    good_voc = voc_xml(image, patient)
    files = {
        # a VOC file with an <owner> naming the patient
        f"{uid}.xml": (voc_xml(image, patient, extra=True), "sidecar-unknown-field"),
        # XML that is not PASCAL VOC
        "report.xml": (f"<report><patient>{patient.name}</patient></report>\n", "sidecar-unknown-format"),
        # a VOC file with a DOCTYPE (entities could pull in other files)
        f"{uid}.1.xml": ('<!DOCTYPE annotation [<!ENTITY who "x">]>\n' + good_voc, "sidecar-unknown-format"),
        # neither its name nor <filename> is a UID: it cannot follow its image
        f"{patient.patient_id}_slice2.xml": (
            good_voc.replace(f"<filename>{uid}</filename>", "<filename>slice2.dcm</filename>"),
            "sidecar-no-image-reference"),
        # a landmark list with a patient_name column, one as JSON with the operator
        "landmarks_named.csv": (landmark_csv([image], patient, extra=True), "sidecar-unknown-field"),
        "landmarks_operator.json": (landmark_json([image], patient, extra=True), "sidecar-unknown-field"),
        # a list that names no image by UID
        "measurements.csv": (f"landmark,x,y\napex,{patient.patient_id},3\n", "sidecar-unknown-format"),
        # a UID column holding something else
        "landmarks_bad_uid.csv": (f"SOPInstanceUID,x\n{patient.patient_id},1.5\n", "sidecar-bad-value"),
        # not UTF-8
        "legacy.csv": (None, "sidecar-unknown-format"),
    }
    written: dict[Path, str] = {}
    for name, (text, code) in files.items():
        path = folder / name
        if text is None:
            path.write_bytes(f"SOPInstanceUID,landmark\n{uid},{patient.display_name}\n".encode("utf-16"))
        else:
            path.write_text(text, encoding="utf-8")
        written[path] = code
    return written
