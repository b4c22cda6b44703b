"""RT Structure Set outlining the phantom's tumour on a CT series."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage

from deid.synthetic import modules
from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.phantom import tumour_outline
from deid.synthetic.private import MINIMUM_PRIVATE_ELEMENTS
from deid.synthetic.private import private_elements as add_private_elements
from deid.synthetic.uids import instance_uid

STRUCTURE_SET_TIME = "233859.371270"


def _image_ref(image: Dataset) -> Dataset:
    return modules.item(
        ReferencedSOPClassUID=image.SOPClassUID, ReferencedSOPInstanceUID=image.SOPInstanceUID
    )


def _contours(images: list[Dataset]) -> list[Dataset]:
    """One CLOSED_PLANAR contour per image that cuts the tumour."""
    contours: list[Dataset] = []
    for image in images:
        outline = tumour_outline(float(image.ImagePositionPatient[2]))
        if not outline:
            continue
        contour = Dataset()
        contour.ContourImageSequence = Sequence([_image_ref(image)])
        contour.ContourGeometricType = "CLOSED_PLANAR"
        contour.NumberOfContourPoints = len(outline)
        contour.ContourNumber = len(contours) + 1
        contour.ContourData = [f"{v:.6g}" for point in outline for v in point]
        contours.append(contour)
    return contours


def _structure_set(
    ds: Dataset, p: SyntheticPatient, images: list[Dataset], roi_name: str, label: str
) -> None:
    """Structure Set module."""
    first = images[0]
    ds.StructureSetLabel = label
    ds.StructureSetName = f"{roi_name} {p.accession_number}"
    ds.StructureSetDescription = f"Tumour contour for {p.display_name}"
    ds.StructureSetDate = p.structure_set_date
    ds.StructureSetTime = STRUCTURE_SET_TIME
    series = modules.item(
        SeriesInstanceUID=first.SeriesInstanceUID,
        ContourImageSequence=Sequence([_image_ref(i) for i in images]),
    )
    study = modules.item(
        ReferencedSOPClassUID=modules.DETACHED_STUDY_SOP_CLASS,
        ReferencedSOPInstanceUID=first.StudyInstanceUID,
        RTReferencedSeriesSequence=Sequence([series]),
    )
    ds.ReferencedFrameOfReferenceSequence = Sequence(
        [
            modules.item(
                FrameOfReferenceUID=first.FrameOfReferenceUID,
                RTReferencedStudySequence=Sequence([study]),
            ),
        ]
    )
    ds.StructureSetROISequence = Sequence(
        [
            modules.item(
                ROINumber=1,
                ReferencedFrameOfReferenceUID=first.FrameOfReferenceUID,
                ROIName=roi_name,
                ROIDescription=label,
                ROIGenerationAlgorithm="MANUAL",
            ),
        ]
    )


def _roi_contour_and_observations(
    ds: Dataset, p: SyntheticPatient, images: list[Dataset], label: str
) -> None:
    """ROI Contour and RT ROI Observations modules."""
    roi = modules.item(ROIDisplayColor=[255, 0, 0], ReferencedROINumber=1)
    contours = _contours(images)
    if contours:
        roi.ContourSequence = Sequence(contours)
    ds.ROIContourSequence = Sequence([roi])
    ds.RTROIObservationsSequence = Sequence(
        [
            modules.item(
                ObservationNumber=1,
                ReferencedROINumber=1,
                ROIObservationLabel=label,
                RTROIInterpretedType="GTV",
                ROIInterpreter=p.reading_physician,
            ),
        ]
    )


def rtss(
    patient: SyntheticPatient,
    images: list[Dataset],
    *,
    roi_name: str = "HCCP",
    label: str = "Liver tumour",
    private_elements: int = MINIMUM_PRIVATE_ELEMENTS,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """An RT Structure Set whose one ROI traces the tumour on ``images`` (one CT series)."""
    if not images:
        raise ValueError("rtss needs at least one image")
    first = images[0]
    series_uid = patient.series_uid("RTSS")
    ds = Dataset()
    modules.sop_common(ds, patient, RTStructureSetStorage, instance_uid(series_uid, 0))
    modules.patient(ds, patient)
    modules.patient_study(ds, patient)
    modules.general_study(ds, patient)
    ds.StudyInstanceUID = first.StudyInstanceUID
    ds.InstanceCreationDate = patient.structure_set_date
    ds.InstanceCreationTime = STRUCTURE_SET_TIME
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1001
    ds.SeriesDate = patient.structure_set_date
    ds.SeriesTime = STRUCTURE_SET_TIME
    ds.SeriesDescription = f"{roi_name} contours"
    ds.OperatorsName = patient.operator
    ds.ReferencedPerformedProcedureStepSequence = Sequence(
        [
            modules.item(
                ReferencedSOPClassUID=modules.MPPS_SOP_CLASS,
                ReferencedSOPInstanceUID=first.ReferencedPerformedProcedureStepSequence[
                    0
                ].ReferencedSOPInstanceUID,
            ),
        ]
    )
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.PositionReferenceIndicator = ""
    modules.equipment(ds, patient)
    _structure_set(ds, patient, images, roi_name, label)
    _roi_contour_and_observations(ds, patient, images, label)
    ds.ApprovalStatus = "APPROVED"
    ds.ReviewDate = patient.structure_set_date
    ds.ReviewTime = STRUCTURE_SET_TIME
    ds.ReviewerName = patient.reading_physician
    add_private_elements(ds, patient, private_elements)
    modules.file_meta(ds, patient, transfer_syntax)
    return ds
