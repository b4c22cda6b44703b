"""PET Image objects (FDG, Lung-PET-CT-Dx style): same patient, study and frame as the CT.

Activity comes from the phantom (an FDG-avid tumour in the liver); the PET slices share the
CT's field of view at a coarser matrix. PHI is planted as in the CT, plus the injection
date-times of the Radiopharmaceutical Information Sequence.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
)

from deid.synthetic import modules
from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.phantom import SLICE_THICKNESS_MM, SliceGeometry, uptake_slice
from deid.synthetic.private import MINIMUM_PRIVATE_ELEMENTS
from deid.synthetic.private import private_elements as add_private_elements
from deid.synthetic.uids import instance_uid

#: Minutes from injection to the start of the PET acquisition.
UPTAKE_MINUTES = 60
INJECTED_DOSE_BQ = 370e6
F18_HALF_LIFE_S = 6586.2


def _radiopharmaceutical(p: SyntheticPatient, injection_time: str) -> Dataset:
    """Radiopharmaceutical Information Sequence item: FDG, F-18, dose and injection date-time."""
    return modules.item(
        Radiopharmaceutical="Fluorodeoxyglucose",
        RadiopharmaceuticalRoute="Intravenous",
        RadiopharmaceuticalVolume="10",
        RadiopharmaceuticalStartTime=injection_time,
        RadiopharmaceuticalStartDateTime=f"{p.study_date}{injection_time}",
        RadionuclideTotalDose=f"{INJECTED_DOSE_BQ:.6g}",
        RadionuclideHalfLife=f"{F18_HALF_LIFE_S}",
        RadionuclidePositronFraction="0.9686",
        RadionuclideCodeSequence=Sequence(
            [
                modules.item(
                    CodeValue="77004003", CodingSchemeDesignator="SCT", CodeMeaning="^18^Fluorine"
                )
            ]
        ),
        RadiopharmaceuticalCodeSequence=Sequence(
            [
                modules.item(
                    CodeValue="35321007",
                    CodingSchemeDesignator="SCT",
                    CodeMeaning="Fluorodeoxyglucose F^18^",
                )
            ]
        ),
    )


def _series(ds: Dataset, p: SyntheticPatient, series_uid: str, time: str, slices: int) -> None:
    """General Series, PET Series, PET Isotope, PET Multi-gated Acquisition, Frame of Reference."""
    ds.Modality = "PT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 600
    ds.SeriesDate = p.study_date
    ds.SeriesTime = time
    ds.SeriesDescription = "PET WB FDG AC"
    ds.PerformingPhysicianName = p.performing_physician
    ds.OperatorsName = p.operator
    ds.BodyPartExamined = "ABDOMEN"
    ds.ProtocolName = "FDG WB"
    ds.FrameOfReferenceUID = p.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Units = "BQML"
    ds.CountsSource = "EMISSION"
    ds.SeriesType = ["STATIC", "IMAGE"]
    ds.CorrectedImage = ["ATTN", "DECY", "SCAT", "DTIM", "RAN", "NORM"]
    ds.DecayCorrection = "START"
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CT-based"
    ds.ScatterCorrectionMethod = "Model-based"
    ds.ReconstructionMethod = "OSEM 3i21s"
    ds.NumberOfSlices = slices
    ds.CollimatorType = "NONE"
    injection = modules.add_seconds(time, -60 * UPTAKE_MINUTES)
    ds.RadiopharmaceuticalInformationSequence = Sequence([_radiopharmaceutical(p, injection)])
    ds.InterventionDrugInformationSequence = Sequence(
        [
            modules.item(
                InterventionDrugName="Furosemide",
                InterventionDrugStartTime=injection,
                InterventionDrugDose="20",
            )
        ]
    )
    ds.BeatRejectionFlag = "N"
    ds.PatientOrientationCodeSequence = Sequence(
        [
            modules.item(
                CodeValue="102538003",
                CodingSchemeDesignator="SCT",
                CodeMeaning="recumbent",
                PatientOrientationModifierCodeSequence=Sequence(
                    [
                        modules.item(
                            CodeValue="40199007", CodingSchemeDesignator="SCT", CodeMeaning="supine"
                        )
                    ]
                ),
            )
        ]
    )
    ds.PatientGantryRelationshipCodeSequence = Sequence(
        [
            modules.item(
                CodeValue="102541007", CodingSchemeDesignator="SCT", CodeMeaning="feet-first"
            )
        ]
    )


def _image(
    ds: Dataset,
    p: SyntheticPatient,
    geometry: SliceGeometry,
    index: int,
    time: str,
    ct_uid: str | None,
) -> None:
    """General Acquisition, General Image, Image Plane, Image Pixel, PET Image modules."""
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.AcquisitionDate = p.study_date
    ds.AcquisitionTime = time
    ds.AcquisitionDateTime = f"{p.study_date}{time}"
    ds.ContentDate = p.study_date
    ds.ContentTime = time
    ds.InstanceNumber = index + 1
    ds.ImageIndex = index + 1
    position = geometry.position(index)
    ds.ImagePositionPatient = [f"{v:.6g}" for v in position]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = f"{position[2]:.6g}"
    ds.SliceThickness = f"{SLICE_THICKNESS_MM:.1f}"
    ds.PixelSpacing = [f"{geometry.pixel_spacing:.6g}"] * 2
    ds.ImageComments = "FDG uptake"
    ds.FrameReferenceTime = "0"
    ds.ActualFrameDuration = 180000
    ds.DecayFactor = "1"
    ds.DoseCalibrationFactor = "1"
    ds.PrimaryPromptsCountsAccumulated = 1000000
    ds.SliceSensitivityFactor = "1"
    if ct_uid is not None:  # the attenuation-correction CT slice this image was corrected with
        ds.ReferencedImageSequence = Sequence(
            [modules.item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=ct_uid)]
        )
    activity = uptake_slice(geometry, index, seed=p.study_instance_uid)
    slope = max(float(activity.max()), 1.0) / 32767.0
    stored = np.rint(activity / slope).astype("<i2")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = geometry.size
    ds.Columns = geometry.size
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = f"{slope:.10g}"[:16]
    ds.RescaleType = "BQML"
    ds.LargestImagePixelValue = int(stored.max())
    ds.SmallestImagePixelValue = int(stored.min())
    ds.PixelData = stored.tobytes()


def pet_slice(
    patient: SyntheticPatient,
    *,
    index: int,
    size: int = 32,
    slices: int = 8,
    ct_series_uid: str | None = None,
    private_elements: int = MINIMUM_PRIVATE_ELEMENTS,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """One PET Image (slice ``index`` of a ``slices``-slice series ``patient.series_uid('PT')``).

    With ``ct_series_uid`` the image references slice ``index`` of that CT series
    (Referenced Image Sequence), as a PET/CT scanner names its attenuation CT.
    """
    series_uid = patient.series_uid("PT")
    time = modules.add_seconds(patient.study_time, 600)
    ds = Dataset()
    modules.sop_common(
        ds, patient, PositronEmissionTomographyImageStorage, instance_uid(series_uid, index)
    )
    modules.patient(ds, patient)
    modules.patient_study(ds, patient)
    modules.general_study(ds, patient)
    modules.equipment(ds, patient)
    ds.Manufacturer = "SIEMENS"
    ds.ManufacturerModelName = "Biograph mCT"
    _series(ds, patient, series_uid, time, slices)
    modules.procedure_step(ds, patient, time, "PET WB FDG")
    ct_uid = instance_uid(ct_series_uid, index) if ct_series_uid else None
    _image(ds, patient, SliceGeometry(size), index, time, ct_uid)
    add_private_elements(ds, patient, private_elements)
    modules.file_meta(ds, patient, transfer_syntax)
    return ds


def pet_series(
    patient: SyntheticPatient,
    *,
    slices: int = 8,
    size: int = 32,
    ct_series_uid: str | None = None,
    private_elements: int = MINIMUM_PRIVATE_ELEMENTS,
) -> list[Dataset]:
    """The PET series of the patient's study (slice positions match the CT's)."""
    return [
        pet_slice(
            patient,
            index=i,
            size=size,
            slices=slices,
            ct_series_uid=ct_series_uid,
            private_elements=private_elements,
        )
        for i in range(slices)
    ]
