"""DICOM Segmentation (SEG) of the phantom's liver, tumour and a vertebra, made with highdicom.

highdicom builds the object from binary masks over one CT series (references to the source
images, functional groups, Frame of Reference); the builder then plants the patient's PHI where
a de-identifier must clean it, and replaces the values highdicom draws from the clock or from
random UIDs, so the same arguments always give the same object.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian

from deid.synthetic import modules
from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.phantom import SLICE_THICKNESS_MM, SliceGeometry, region_mask
from deid.synthetic.private import MINIMUM_PRIVATE_ELEMENTS
from deid.synthetic.private import private_elements as add_private_elements
from deid.synthetic.uids import derive_uid, instance_uid

SEGMENTATION_TIME = "101500.000000"
#: Segment number -> (region of the phantom, label, category, type, algorithm name or None).
SEGMENTS: dict[int, tuple[str, str, Code, Code, str | None]] = {
    1: ("liver", "Liver", codes.SCT.Organ, codes.SCT.Liver, "LiverNet"),
    2: ("tumour", "HCC", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm, None),
    3: ("vertebra", "Vertebra", codes.SCT.Tissue, codes.SCT.Bone, "BoneThreshold"),
}


def _description(number: int, series_uid: str) -> hd.seg.SegmentDescription:
    region, label, category, kind, algorithm = SEGMENTS[number]
    identification = None
    if algorithm is not None:
        identification = hd.AlgorithmIdentificationSequence(
            name=algorithm, family=codes.cid7162.ArtificialIntelligence, version="1.0"
        )
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=category,
        segmented_property_type=kind,
        algorithm_type="AUTOMATIC" if algorithm else "MANUAL",
        algorithm_identification=identification,
        tracking_uid=derive_uid(series_uid, "segment", number),
        tracking_id=f"{region}-{number}",
    )


def _masks(images: Sequence[Dataset]) -> np.ndarray:
    """(frames, rows, columns, segments) binary masks on the images' slice positions."""
    geometry = SliceGeometry(int(images[0].Rows))
    planes = []
    for image in images:
        index = round((geometry.z(0) - float(image.ImagePositionPatient[2])) / SLICE_THICKNESS_MM)
        planes.append(
            np.stack([region_mask(geometry, index, SEGMENTS[n][0]) for n in SEGMENTS], -1)
        )
    return np.stack(planes).astype(np.uint8)


def _plant(ds: Dataset, p: SyntheticPatient, series_uid: str) -> None:
    """The patient's PHI where a de-identifier must clean it; clock and random values fixed."""
    modules.patient(ds, p)
    modules.patient_study(ds, p)
    modules.general_study(ds, p)
    modules.procedure_step(ds, p, SEGMENTATION_TIME, "Liver segmentation")
    ds.SpecificCharacterSet = modules.CHARACTER_SET
    ds.TimezoneOffsetFromUTC = "+0800"
    ds.InstanceCreationDate = p.structure_set_date
    ds.InstanceCreationTime = SEGMENTATION_TIME
    ds.InstanceCreatorUID = derive_uid(p.station_name, "instance-creator")
    ds.ContentDate = p.structure_set_date
    ds.ContentTime = SEGMENTATION_TIME
    ds.SeriesDate = p.structure_set_date
    ds.SeriesTime = SEGMENTATION_TIME
    ds.OperatorsName = p.operator
    ds.InstitutionName = p.institution
    ds.InstitutionAddress = p.institution_address
    ds.InstitutionalDepartmentName = p.department
    ds.StationName = p.station_name
    for item in ds.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = f"{p.structure_set_date}{SEGMENTATION_TIME}"
    organisation = derive_uid(series_uid, "dimension-organization")
    for item in ds.DimensionOrganizationSequence:
        item.DimensionOrganizationUID = organisation
    for item in ds.DimensionIndexSequence:
        item.DimensionOrganizationUID = organisation


def segmentation(
    patient: SyntheticPatient,
    images: Sequence[Dataset],
    *,
    private_elements: int = MINIMUM_PRIVATE_ELEMENTS,
    transfer_syntax: str = ExplicitVRLittleEndian,
    names_patient_in_text: bool = False,
) -> Dataset:
    """A BINARY SEG of liver, tumour and vertebra over ``images`` (one CT series of ``patient``).

    Frames without any segment are left out (highdicom's default); every frame's Derivation
    Image Sequence names its source CT image. ``names_patient_in_text`` writes the patient's
    name into Series and Content Description and the tumour's Segment Description (free text a
    profile may keep: for the review of kept text).
    """
    if not images:
        raise ValueError("segmentation needs at least one image")
    series_uid = patient.series_uid("SEG")
    seg = hd.seg.Segmentation(
        source_images=list(images),
        pixel_array=_masks(images),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(n, series_uid) for n in SEGMENTS],
        series_instance_uid=series_uid,
        series_number=300,
        sop_instance_uid=instance_uid(series_uid, 0),
        instance_number=1,
        manufacturer="deid synthetic",
        manufacturer_model_name="phantom segmenter",
        software_versions="1.0",
        device_serial_number=patient.device_serial_number,
        content_description="Liver, tumour and bone masks",
        content_creator_name=patient.reading_physician,
        content_label="LIVER_SEG",
        transfer_syntax_uid=transfer_syntax,
        series_description="Liver segmentation",
    )
    _plant(seg, patient, series_uid)
    if names_patient_in_text:
        seg.SeriesDescription = f"Liver segmentation {patient.display_name}"
        seg.ContentDescription = f"Masks for {patient.display_name}"
        seg.SegmentSequence[1].SegmentDescription = f"HCC of {patient.display_name}"
    add_private_elements(seg, patient, private_elements)
    modules.file_meta(seg, patient, transfer_syntax)
    return seg
