"""Standard modules shared by every synthetic object, with the patient's PHI planted."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.uids import derive_uid, instance_uid

CHARACTER_SET = "ISO_IR 192"
MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
DETACHED_STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"
IMPLEMENTATION_CLASS_UID = derive_uid("deid-pacs", "synthetic", "implementation")
IMPLEMENTATION_VERSION = "DEID_SYNTH_1"
STUDY_DESCRIPTION = "CT SCAN-UPPER ABDOMEN"


def add_seconds(time: str, seconds: float) -> str:
    """A TM ``HHMMSS.ffffff`` moved by ``seconds`` (wrapping at midnight)."""
    total = int(time[:2]) * 3600 + int(time[2:4]) * 60 + float(time[4:]) + seconds
    total %= 86400
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}{int(minutes):02d}{secs:09.6f}"


def item(**attributes: object) -> Dataset:
    """A sequence item from keyword arguments."""
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def patient(ds: Dataset, p: SyntheticPatient) -> None:
    """Patient module (and demographics that de-identifiers must remove)."""
    ds.PatientName = p.dicom_name
    ds.PatientID = p.patient_id
    ds.IssuerOfPatientID = p.issuer_of_patient_id
    ds.TypeOfPatientID = "TEXT"
    ds.PatientBirthDate = p.birth_date
    ds.PatientSex = p.sex
    ds.OtherPatientNames = p.other_patient_name
    ds.OtherPatientIDsSequence = Sequence(
        [
            item(
                PatientID=p.other_patient_id,
                IssuerOfPatientID=p.other_patient_id_issuer,
                TypeOfPatientID="TEXT",
            ),
        ]
    )
    ds.PatientComments = f"Chart {p.other_patient_id} for {p.display_name}"
    ds.PatientAddress = p.address
    ds.PatientTelephoneNumbers = p.telephone


def patient_study(ds: Dataset, p: SyntheticPatient) -> None:
    """Patient Study module, plus the admission attributes of the seed's table."""
    ds.AdmittingDiagnosesDescription = "Hepatocellular carcinoma"
    ds.PatientAge = p.age
    ds.PatientSize = p.size
    ds.PatientWeight = p.weight
    ds.AdditionalPatientHistory = p.history
    ds.AdmittingDate = p.admitting_date
    ds.AdmittingTime = "081500"


def general_study(ds: Dataset, p: SyntheticPatient) -> None:
    """General Study module, plus the request attributes that sit beside it."""
    ds.StudyDate = p.study_date
    ds.StudyTime = p.study_time
    ds.AccessionNumber = p.accession_number
    ds.ReferringPhysicianName = p.referring_physician
    ds.StudyDescription = STUDY_DESCRIPTION
    ds.NameOfPhysiciansReadingStudy = p.reading_physician
    ds.StudyInstanceUID = p.study_instance_uid
    ds.StudyID = p.study_id
    ds.RequestingPhysician = p.requesting_physician
    ds.RequestingService = p.requesting_service
    ds.RequestedProcedureDescription = "CT liver 4 phase"


def equipment(ds: Dataset, p: SyntheticPatient) -> None:
    """General Equipment module (the scanner of the seed's sample)."""
    ds.Manufacturer = "SIEMENS"
    ds.InstitutionName = p.institution
    ds.InstitutionAddress = p.institution_address
    ds.StationName = p.station_name
    ds.InstitutionalDepartmentName = p.department
    ds.ManufacturerModelName = "Sensation 16"
    ds.DeviceSerialNumber = p.device_serial_number
    ds.SoftwareVersions = "VB10B"
    ds.DateOfLastCalibration = p.calibration_date
    ds.TimeOfLastCalibration = "071502.000000"


def procedure_step(ds: Dataset, p: SyntheticPatient, time: str, description: str) -> None:
    """Performed Procedure Step attributes and the Request Attributes Sequence."""
    ds.PerformedProcedureStepStartDate = p.study_date
    ds.PerformedProcedureStepStartTime = time
    ds.PerformedProcedureStepID = p.performed_step_id
    ds.PerformedProcedureStepDescription = f"{description} {p.accession_number}"
    ds.PerformedProtocolCodeSequence = Sequence(
        [
            item(CodeValue="VGHLIV4P", CodingSchemeDesignator="99VGH", CodeMeaning="Liver 4 phase"),
        ]
    )
    ds.ReferencedPerformedProcedureStepSequence = Sequence(
        [
            item(
                ReferencedSOPClassUID=MPPS_SOP_CLASS,
                ReferencedSOPInstanceUID=derive_uid(p.study_instance_uid, "mpps"),
            ),
        ]
    )
    ds.RequestAttributesSequence = Sequence(
        [
            item(
                AccessionNumber=p.accession_number,
                ReferencedStudySequence=Sequence(
                    [
                        item(
                            ReferencedSOPClassUID=DETACHED_STUDY_SOP_CLASS,
                            ReferencedSOPInstanceUID=p.study_instance_uid,
                        ),
                    ]
                ),
                StudyInstanceUID=p.study_instance_uid,
                RequestedProcedureDescription="CT liver 4 phase",
                ScheduledProcedureStepDescription=f"Liver CT for {p.display_name}",
                ScheduledProcedureStepID=p.scheduled_step_id,
                RequestedProcedureID=p.requested_procedure_id,
            ),
        ]
    )


def sop_common(ds: Dataset, p: SyntheticPatient, sop_class: str, sop_instance: str) -> None:
    """SOP Common module."""
    ds.SpecificCharacterSet = CHARACTER_SET
    ds.InstanceCreationDate = p.study_date
    ds.InstanceCreationTime = p.study_time
    ds.InstanceCreatorUID = derive_uid(p.station_name, "instance-creator")
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.TimezoneOffsetFromUTC = "+0800"


def file_meta(ds: Dataset, p: SyntheticPatient, transfer_syntax: str) -> None:
    """File meta information, with a private block that names the patient."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    meta.SourceApplicationEntityTitle = p.ae_title
    meta.PrivateInformationCreatorUID = UID(derive_uid("VGH PACS", "private-information"))
    info = f"VGH PACS export; patient {p.patient_id}; accession {p.accession_number}"
    meta.PrivateInformation = info.encode("ascii") + (b"\0" if len(info) % 2 else b"")
    ds.file_meta = meta


def secondary_capture(
    ds: Dataset, p: SyntheticPatient, *, sop_class: str, series_uid: str, modality: str,
    series_number: int, description: str, body_part: str, capture_device: tuple[str, str],
    comment: str, burned_in: str | None,
) -> None:
    """The modules every Secondary Capture shares: SOP Common, Patient, Study, Equipment, General
    Series, SC Equipment, General Image (a capture of ``p``, with ``comment`` naming them)."""
    sop_common(ds, p, sop_class, instance_uid(series_uid, 0))
    patient(ds, p)
    patient_study(ds, p)
    general_study(ds, p)
    equipment(ds, p)
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDate = p.study_date
    ds.SeriesTime = p.study_time
    ds.SeriesDescription = description
    ds.BodyPartExamined = body_part
    ds.OperatorsName = p.operator
    ds.ConversionType = "WSD"
    ds.SecondaryCaptureDeviceManufacturer, ds.SecondaryCaptureDeviceManufacturerModelName = capture_device
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "P"]
    ds.ContentDate = p.study_date
    ds.ContentTime = p.study_time
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ImageComments = comment
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in

