"""TID 1500 Measurement Reports of pelvic landmarks (the CTPEL seed), made with highdicom.

Fifteen landmarks are placed on a CT series: each is a TID 1410 measurement group with a
SCOORD point on one image (SELECTED FROM that image) and, in a Comprehensive 3D SR, a second
group with the SCOORD3D point in the series' frame of reference. The positions are spread over
the volume by fixed fractions of the field of view; they are not anatomical on the liver phantom.

PHI is planted where real reports carry it: the person observer's name (PNAME) and organization
(TEXT naming the institution), a subject context (TID 1007: name PNAME, ID TEXT, birth date DATE,
UID UIDREF), a comment TEXT that names the patient beside a harmless one, study DATE/TIME and an
acquisition DATETIME in the image library, and the patient, study, equipment, verifying observer
and request attributes every SR header has.

With ``every_context=True`` the report also carries what the issue of real reports showed: the
person observer's login name and roles, the device observer's serial number and physical location,
a procedure context (TID 1005: study UID, placer, filler and accession numbers), a Tracking
Identifier naming the physician, and a Finding TEXT naming a physician and a street address with
an image reference beneath it (a TEXT that cannot be removed without its reference).
:func:`context_values` lists every identifying value so planted.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

import highdicom as hd
import numpy as np
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import (
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    EnhancedSRStorage,
    ExplicitVRLittleEndian,
)

from deid.synthetic import modules
from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.private import MINIMUM_PRIVATE_ELEMENTS
from deid.synthetic.private import private_elements as add_private_elements
from deid.synthetic.uids import derive_uid, instance_uid

#: The three SR SOP classes the builder makes, by the name :func:`landmark_sr` takes.
SR_CLASSES: dict[str, str] = {
    "enhanced": EnhancedSRStorage,
    "comprehensive": ComprehensiveSRStorage,
    "comprehensive3d": Comprehensive3DSRStorage,
}
LANDMARK_SCHEME = "99CTPEL"  # a local coding scheme: the CTPEL landmark list
REPORT_TIME = "101500.000000"
HARMLESS_TEXT = "Landmarks placed on the portal venous phase; reviewed in 3D."
SERIES_LABEL = "SR"


@dataclass(frozen=True)
class Landmark:
    """One pelvic landmark: its code and where it is placed (fractions of the volume)."""

    code: str
    meaning: str
    column: float  # fraction of the columns, left to right of the image
    row: float  # fraction of the rows, top to bottom
    depth: float  # fraction of the slices, first to last

    @property
    def concept(self) -> hd.sr.CodedConcept:
        return hd.sr.CodedConcept(self.code, LANDMARK_SCHEME, self.meaning)


#: The 15 landmarks of the CTPEL collection (5 bones, both sides where paired).
LANDMARKS: tuple[Landmark, ...] = (
    Landmark("LM01", "Right anterior superior iliac spine", 0.25, 0.35, 0.0),
    Landmark("LM02", "Left anterior superior iliac spine", 0.75, 0.35, 0.0),
    Landmark("LM03", "Right iliac crest", 0.22, 0.50, 0.0),
    Landmark("LM04", "Left iliac crest", 0.78, 0.50, 0.0),
    Landmark("LM05", "Sacral promontory", 0.50, 0.62, 0.25),
    Landmark("LM06", "Right femoral head centre", 0.30, 0.48, 0.5),
    Landmark("LM07", "Left femoral head centre", 0.70, 0.48, 0.5),
    Landmark("LM08", "Right greater trochanter", 0.18, 0.50, 0.5),
    Landmark("LM09", "Left greater trochanter", 0.82, 0.50, 0.5),
    Landmark("LM10", "Pubic symphysis", 0.50, 0.30, 0.75),
    Landmark("LM11", "Coccyx tip", 0.50, 0.70, 0.75),
    Landmark("LM12", "Right ischial tuberosity", 0.38, 0.62, 1.0),
    Landmark("LM13", "Left ischial tuberosity", 0.62, 0.62, 1.0),
    Landmark("LM14", "Right lesser trochanter", 0.26, 0.55, 1.0),
    Landmark("LM15", "Left lesser trochanter", 0.74, 0.55, 1.0),
)


@dataclass(frozen=True)
class PlacedLandmark:
    """A landmark on one image: pixel coordinates (column, row) and patient coordinates (mm)."""

    landmark: Landmark
    image: Dataset
    pixel: tuple[float, float]
    point: tuple[float, float, float]


def place_landmarks(images: list[Dataset]) -> list[PlacedLandmark]:
    """Put each landmark on a pixel centre of one image of the (axial) series ``images``."""
    ordered = sorted(images, key=lambda ds: int(ds.InstanceNumber))
    placed = []
    for landmark in LANDMARKS:
        image = ordered[round(landmark.depth * (len(ordered) - 1))]
        column = round(landmark.column * (int(image.Columns) - 1))
        row = round(landmark.row * (int(image.Rows) - 1))
        origin = np.asarray(image.ImagePositionPatient, dtype=float)
        orientation = np.asarray(image.ImageOrientationPatient, dtype=float)
        row_spacing, column_spacing = (float(v) for v in image.PixelSpacing)
        point = (
            origin + orientation[:3] * column * column_spacing + orientation[3:] * row * row_spacing
        )
        placed.append(
            PlacedLandmark(
                landmark, image, (column + 0.5, row + 0.5), tuple(round(float(v), 4) for v in point)
            )
        )
    return placed


def context_values(patient: SyntheticPatient) -> dict[str, str]:
    """Every identifying value an ``every_context`` report plants in its content tree, by role."""
    family, _, given = patient.reading_physician.partition("^")
    return {
        "observer_name": patient.reading_physician,
        "observer_login": f"{given.split('-')[0].lower()}.{family.lower()}",
        "observer_organization": patient.institution,
        "device_name": patient.station_name,
        "device_serial": patient.device_serial_number,
        "device_location": f"{patient.department} reading room 3",
        "subject_name": patient.dicom_name,
        "subject_id": patient.patient_id,
        "subject_birth_date": patient.birth_date,
        "placer_number": f"PO{patient.accession_number}",
        "filler_number": f"FO{patient.accession_number}",
        "accession_number": patient.accession_number,
        "tracking_identifier": f"LM01 checked by Dr {family.title()}",
        "finding": (f"Reviewed with Dr {patient.referring_physician.replace('^', ' ')} at "
                    f"{patient.address}"),
    }


def _group(
    patient: SyntheticPatient,
    placed: PlacedLandmark,
    region: hd.sr.ImageRegion | hd.sr.ImageRegion3D,
    kind: str,
    every_context: bool = False,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    landmark = placed.landmark
    identifier = f"{landmark.code} {landmark.meaning}"
    if every_context and landmark is LANDMARKS[0]:
        identifier = context_values(patient)["tracking_identifier"]
    tracking = hd.sr.TrackingIdentifier(
        uid=derive_uid(patient.study_instance_uid, "landmark", landmark.code, kind),
        identifier=identifier,
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_region=region,
        finding_type=codes.SCT.AnatomicalStructure,
        finding_sites=[hd.sr.FindingSite(landmark.concept)],
    )


def _measurement_groups(
    patient: SyntheticPatient, placed: list[PlacedLandmark], three_d: bool, every_context: bool
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    groups = []
    for item in placed:
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POINT,
            graphic_data=np.asarray([item.pixel], dtype=float),
            source_image=hd.sr.SourceImageForRegion(
                item.image.SOPClassUID, item.image.SOPInstanceUID
            ),
        )
        groups.append(_group(patient, item, region, "2d", every_context))
    if three_d:
        for item in placed:
            region3d = hd.sr.ImageRegion3D(
                graphic_type=hd.sr.GraphicTypeValues3D.POINT,
                graphic_data=np.asarray([item.point], dtype=float),
                frame_of_reference_uid=item.image.FrameOfReferenceUID,
            )
            groups.append(_group(patient, item, region3d, "3d", every_context))
    return groups


def _observation_context(patient: SyntheticPatient, every_context: bool) -> hd.sr.ObservationContext:
    values = context_values(patient)
    person = hd.sr.PersonObserverIdentifyingAttributes(
        name=patient.reading_physician,
        organization_name=patient.institution,
        login_name=values["observer_login"] if every_context else None,
        role_in_organization=codes.DCM.Physician if every_context else None,
        role_in_procedure=codes.cid7452.Consultant if every_context else None,
    )
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=derive_uid(patient.station_name, "landmark-device"),
        name=values["device_name"] if every_context else "LandmarkNet",
        manufacturer_name="deid synthetic",
        model_name="landmarks-1",
        serial_number=values["device_serial"] if every_context else None,
        physical_location=values["device_location"] if every_context else None,
    )
    return hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(codes.cid270.Person, person),
        observer_device_context=hd.sr.ObserverContext(codes.cid270.Device, device),
    )


def _subject_context(patient: SyntheticPatient) -> list[hd.sr.ContentItem]:
    """TID 1007 Subject Context, Patient: the identity an SR repeats inside its content."""
    obs = hd.sr.RelationshipTypeValues.HAS_OBS_CONTEXT
    sex = {"F": codes.cid7455.Female, "M": codes.cid7455.Male}.get(
        patient.sex, codes.cid7455.UnknownSex
    )
    return [
        hd.sr.CodeContentItem(codes.DCM.SubjectClass, codes.DCM.Patient, relationship_type=obs),
        hd.sr.UIDRefContentItem(
            codes.DCM.SubjectUID, derive_uid(patient.patient_id, "subject"), relationship_type=obs
        ),
        hd.sr.PnameContentItem(codes.DCM.SubjectName, patient.dicom_name, relationship_type=obs),
        hd.sr.TextContentItem(codes.DCM.SubjectID, patient.patient_id, relationship_type=obs),
        hd.sr.DateContentItem(
            codes.DCM.SubjectBirthDate, patient.birth_date, relationship_type=obs
        ),
        hd.sr.CodeContentItem(codes.DCM.SubjectSex, sex, relationship_type=obs),
    ]


def _procedure_context(patient: SyntheticPatient) -> list[hd.sr.ContentItem]:
    """TID 1005 Procedure Context: the study and the order an SR repeats inside its content."""
    obs = hd.sr.RelationshipTypeValues.HAS_OBS_CONTEXT
    values = context_values(patient)
    return [
        hd.sr.UIDRefContentItem(
            codes.DCM.ProcedureStudyInstanceUID, patient.study_instance_uid, relationship_type=obs
        ),
        hd.sr.TextContentItem(codes.DCM.PlacerNumber, values["placer_number"], relationship_type=obs),
        hd.sr.TextContentItem(codes.DCM.FillerNumber, values["filler_number"], relationship_type=obs),
        hd.sr.TextContentItem(
            codes.DCM.AccessionNumber, values["accession_number"], relationship_type=obs
        ),
    ]


def _finding(patient: SyntheticPatient, image: Dataset) -> hd.sr.ContentItem:
    """A Finding TEXT naming a physician and an address, INFERRED FROM an image beneath it."""
    finding = hd.sr.TextContentItem(
        codes.DCM.Finding, context_values(patient)["finding"],
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    finding.ContentSequence = hd.sr.ContentSequence([
        hd.sr.ImageContentItem(
            codes.DCM.SourceImage,
            image.SOPClassUID, image.SOPInstanceUID,
            relationship_type=hd.sr.RelationshipTypeValues.INFERRED_FROM,
        )
    ], is_root=False)
    return finding


def _comments(patient: SyntheticPatient) -> list[hd.sr.ContentItem]:
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    return [
        hd.sr.TextContentItem(codes.DCM.Comment, HARMLESS_TEXT, relationship_type=contains),
        hd.sr.TextContentItem(
            codes.DCM.Comment,
            f"Landmarks for {patient.display_name} ({patient.patient_id}) checked by the "
            "radiologist.",
            relationship_type=contains,
        ),
    ]


def _dates(patient: SyntheticPatient, image: Dataset) -> list[hd.sr.ContentItem]:
    """Study Date, Study Time and Imaging Start DateTime of an image library entry (TID 1602)."""
    acq = hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT
    return [
        hd.sr.DateContentItem(codes.DCM.StudyDate, patient.study_date, relationship_type=acq),
        hd.sr.TimeContentItem(codes.DCM.StudyTime, patient.study_time, relationship_type=acq),
        hd.sr.DateTimeContentItem(
            codes.DCM.ImagingStartDatetime, str(image.AcquisitionDateTime), relationship_type=acq
        ),
    ]


def _content(
    patient: SyntheticPatient, placed: list[PlacedLandmark], images: list[Dataset], sop_class: str,
    every_context: bool = False,
) -> Dataset:
    """The root container: TID 1500 with the planted subject context, comments and dates."""
    referenced = list({item.image.SOPInstanceUID: item.image for item in placed}.values())
    with_library = sop_class != EnhancedSRStorage  # Enhanced SR: image references are leaves only
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(patient, every_context),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=_measurement_groups(
            patient, placed, sop_class == Comprehensive3DSRStorage, every_context
        ),
        referenced_images=referenced if with_library else None,
    )
    root = report[0]
    items = list(root.ContentSequence)
    observer_end = max(
        i for i, item in enumerate(items) if item.RelationshipType == "HAS OBS CONTEXT"
    )
    items[observer_end + 1 : observer_end + 1] = _subject_context(patient) + (
        _procedure_context(patient) if every_context else []
    )
    items.extend(_comments(patient))
    if every_context:
        items.append(_finding(patient, placed[0].image))
    if with_library:
        for item in items:
            if item.ConceptNameCodeSequence[0].CodeValue == codes.DCM.ImageLibrary.value:
                for entry in item.ContentSequence[0].ContentSequence:
                    entry.ContentSequence.extend(_dates(patient, images[0]))
    else:
        root_dates = _dates(patient, images[0])
        for date_item in root_dates:
            date_item.RelationshipType = "HAS OBS CONTEXT"
        items[observer_end + 1 : observer_end + 1] = root_dates
    root.ContentSequence = hd.sr.ContentSequence(items, is_root=False)
    return root


def _sr_class(name: str) -> type:
    return {
        EnhancedSRStorage: hd.sr.EnhancedSR,
        ComprehensiveSRStorage: hd.sr.ComprehensiveSR,
        Comprehensive3DSRStorage: hd.sr.Comprehensive3DSR,
    }[SR_CLASSES[name]]


def _fix_times(ds: Dataset, patient: SyntheticPatient) -> None:
    """Replace the clock times highdicom records with the patient's own (deterministic output)."""
    report_date = patient.study_date
    ds.InstanceCreationDate = report_date
    ds.InstanceCreationTime = REPORT_TIME
    ds.ContentDate = report_date
    ds.ContentTime = REPORT_TIME
    ds.SeriesDate = report_date
    ds.SeriesTime = REPORT_TIME
    for observer in ds.get("VerifyingObserverSequence", []):
        observer.VerificationDateTime = f"{report_date}{REPORT_TIME}"
    for equipment in ds.get("ContributingEquipmentSequence", []):
        equipment.ContributionDateTime = f"{report_date}{REPORT_TIME}"


def landmark_sr(
    patient: SyntheticPatient,
    images: list[Dataset],
    *,
    sop_class: str = "comprehensive3d",
    private_elements: int = MINIMUM_PRIVATE_ELEMENTS,
    transfer_syntax: str = ExplicitVRLittleEndian,
    every_context: bool = False,
) -> Dataset:
    """A TID 1500 report of the 15 landmarks on ``images`` (one CT series), with PHI planted
    (``every_context``: every observer, subject and procedure context too, see the module).

    ``sop_class`` is ``'enhanced'`` (SCOORD, no image library: Enhanced SR keeps image
    references at the leaves), ``'comprehensive'`` (SCOORD) or ``'comprehensive3d'`` (SCOORD and
    SCOORD3D). Its SOP Instance UID is ``instance_uid(patient.series_uid('SR-<class>'), 0)``.
    """
    if sop_class not in SR_CLASSES:
        raise ValueError(f"sop_class must be one of {sorted(SR_CLASSES)}, got {sop_class!r}")
    if not images:
        raise ValueError("landmark_sr needs at least one image")
    uid = SR_CLASSES[sop_class]
    placed = place_landmarks(images)
    label = f"{SERIES_LABEL}-{sop_class}" + ("-context" if every_context else "")
    series_uid = patient.series_uid(label)
    first = images[0]
    requested = modules.item(
        AccessionNumber=patient.accession_number,
        StudyInstanceUID=first.StudyInstanceUID,
        RequestedProcedureID=patient.requested_procedure_id,
        RequestedProcedureDescription="CT pelvis landmarks",
        PlacerOrderNumberImagingServiceRequest=f"PO{patient.accession_number}",
        FillerOrderNumberImagingServiceRequest=f"FO{patient.accession_number}",
        ReferencedStudySequence=Sequence(),
        RequestedProcedureCodeSequence=Sequence(),
    )
    report = _sr_class(sop_class)(
        evidence=images,
        content=_content(patient, placed, images, uid, every_context),
        series_instance_uid=series_uid,
        series_number={"enhanced": 2001, "comprehensive": 2002, "comprehensive3d": 2003}[sop_class],
        sop_instance_uid=instance_uid(series_uid, 0),
        instance_number=1,
        manufacturer="deid synthetic",
        is_complete=True,
        is_final=True,
        is_verified=True,
        institution_name=patient.institution,
        institutional_department_name=patient.department,
        verifying_observer_name=patient.reading_physician,
        verifying_organization=patient.institution,
        requested_procedures=[requested],
    )
    ds = Dataset()
    ds.update(report)
    _fix_times(ds, patient)
    ds.SpecificCharacterSet = modules.CHARACTER_SET
    ds.StationName = patient.station_name
    ds.TimezoneOffsetFromUTC = "+0800"
    add_private_elements(ds, patient, private_elements)
    modules.file_meta(ds, patient, transfer_syntax)
    return _plain(ds)


def _plain(ds: Dataset) -> Dataset:
    """The object as a reader sees it: plain pydicom values (no highdicom classes, FL as stored)."""
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)
