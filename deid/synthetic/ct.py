"""CT Image objects of the four-phase liver study, with PHI planted everywhere."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from deid.synthetic import legacy, modules
from deid.synthetic.identity import PHASES, SyntheticPatient
from deid.synthetic.phantom import SLICE_THICKNESS_MM, SliceGeometry, hounsfield_slice
from deid.synthetic.private import private_elements as add_private_elements
from deid.synthetic.uids import instance_uid

#: Per phase: (Series Description, Series Number, seconds after the study time).
PHASE_SERIES: dict[str, tuple[str, int, int]] = {
    "N": ("Pre. Phas 5.0 B31f", 2, 0),
    "A": ("Art. Phas 5.0 B31f", 3, 35),
    "P": ("Port. Phas 5.0 B31f", 4, 70),
    "D": ("Del. Phas 5.0 B31f", 5, 180),
}


def _contrast(ds: Dataset, p: SyntheticPatient) -> None:
    """Contrast/Bolus module (the enhanced phases only)."""
    ds.ContrastBolusAgent = "Iopamiro 370"
    ds.ContrastBolusRoute = "IV"
    ds.ContrastBolusVolume = "100"
    ds.ContrastBolusStartTime = modules.add_seconds(p.study_time, 10)
    ds.ContrastBolusTotalDose = "37"
    ds.ContrastBolusIngredient = "IODINE"
    ds.ContrastBolusIngredientConcentration = "370"


def _neighbour(series_uid: str, index: int) -> Sequence:
    other = index - 1 if index > 0 else index + 1
    return Sequence(
        [
            modules.item(
                ReferencedSOPClassUID=CTImageStorage,
                ReferencedSOPInstanceUID=instance_uid(series_uid, other),
            )
        ]
    )


def _series(ds: Dataset, p: SyntheticPatient, series_uid: str, phase: str, time: str) -> None:
    """General Series and Frame of Reference modules."""
    description, number, _ = PHASE_SERIES[phase]
    ds.SeriesDate = p.study_date
    ds.SeriesTime = time
    ds.Modality = "CT"
    ds.SeriesDescription = description
    ds.PerformingPhysicianName = p.performing_physician
    ds.OperatorsName = p.operator
    ds.BodyPartExamined = "ABDOMEN"
    ds.ProtocolName = "Liver_4Phase"
    ds.PatientPosition = "FFS"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.FrameOfReferenceUID = p.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""


def _image(
    ds: Dataset,
    p: SyntheticPatient,
    geometry: SliceGeometry,
    index: int,
    time: str,
    phase: str,
    series_uid: str,
    signed: bool,
) -> None:
    """General Acquisition, General Image, Image Plane, Image Pixel, CT Image, VOI LUT."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionDate = p.study_date
    ds.ContentDate = p.study_date
    ds.AcquisitionDateTime = f"{p.study_date}{time}"
    ds.AcquisitionTime = time
    ds.ContentTime = modules.add_seconds(time, 0.5 * index)
    ds.ReferencedImageSequence = _neighbour(series_uid, index)
    ds.SourceImageSequence = _neighbour(series_uid, index)
    ds.ScanOptions = "HELICAL_CT"
    ds.SliceThickness = f"{SLICE_THICKNESS_MM:.1f}"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = "350"
    ds.DistanceSourceToDetector = "1040"
    ds.DistanceSourceToPatient = "570"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "155"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = 180
    ds.Exposure = 120
    ds.FilterType = "0"
    ds.GeneratorPower = 22
    ds.FocalSpots = "1.2"
    ds.ConvolutionKernel = "B31f"
    ds.AcquisitionNumber = 1 + PHASES.index(phase)
    ds.InstanceNumber = index + 1
    position = geometry.position(index)
    ds.ImagePositionPatient = [f"{v:.6g}" for v in position]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = f"{position[2]:.6g}"
    ds.ImageComments = "IV contrast"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = geometry.size
    ds.Columns = geometry.size
    ds.PixelSpacing = [f"{geometry.pixel_spacing:.6g}"] * 2
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.WindowCenterWidthExplanation = "ABDOMEN"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    hu = hounsfield_slice(geometry, index, phase, seed=p.study_instance_uid)
    stored = hu.astype("<i4") + 1024
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()


def ct_slice(
    patient: SyntheticPatient,
    *,
    series_uid: str,
    index: int,
    size: int = 512,
    private_elements: int = 185,
    phase: str = "P",
    signed: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """One CT Image (all mandatory CT modules) of slice ``index`` (0-based) of a phase.

    ``signed`` stores int16 (Bits Stored 16) instead of uint16 with Bits Stored 12;
    both use Rescale Intercept -1024. Its SOP Instance UID is
    ``uids.instance_uid(series_uid, index)``.
    """
    if phase not in PHASE_SERIES:
        raise ValueError(f"phase must be one of {sorted(PHASE_SERIES)}, got {phase!r}")
    time = modules.add_seconds(patient.study_time, PHASE_SERIES[phase][2])
    geometry = SliceGeometry(size)
    ds = Dataset()
    modules.sop_common(ds, patient, CTImageStorage, instance_uid(series_uid, index))
    modules.patient(ds, patient)
    modules.patient_study(ds, patient)
    modules.general_study(ds, patient)
    modules.equipment(ds, patient)
    _series(ds, patient, series_uid, phase, time)
    modules.procedure_step(ds, patient, time, PHASE_SERIES[phase][0])
    _image(ds, patient, geometry, index, time, phase, series_uid, signed)
    if phase != "N":
        _contrast(ds, patient)
    legacy.retired_attributes(ds, patient)
    legacy.overlay(ds, patient, size, size)
    legacy.curve(ds, patient)
    add_private_elements(ds, patient, private_elements)
    modules.file_meta(ds, patient, transfer_syntax)
    return ds


def four_phase_ct(
    patient: SyntheticPatient, *, slices: int = 8, size: int = 64, private_elements: int = 20
) -> dict[str, list[Dataset]]:
    """The study's CT: one series per phase ``'N'``, ``'A'``, ``'P'``, ``'D'``."""
    return {
        phase: [
            ct_slice(
                patient,
                series_uid=patient.series_uid(phase),
                index=i,
                size=size,
                private_elements=private_elements,
                phase=phase,
            )
            for i in range(slices)
        ]
        for phase in PHASES
    }
