"""What a de-identified object holds: no private, overlay or curve groups, a new file meta group,
the de-identification marks, the table's actions, and clean sequences at every depth."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID
from support import phi_found, release, walk

from deid import __version__
from deid.engine.deidentifier import IMPLEMENTATION_CLASS_UID
from deid.engine.uids import UidRemapper
from deid.synthetic import four_phase_ct, oddities, rtss

CID_7050_VGHTPE = {"113100", "113104", "113107", "113108", "113109"}


@pytest.fixture(scope="module")
def sources(patient) -> dict[str, object]:
    phases = four_phase_ct(patient, slices=2, size=16)
    return {"ct": phases["A"][1], "rtss": rtss(patient, phases["P"])}


@pytest.fixture(scope="module")
def released(sources, vghtpe, key) -> dict[str, tuple]:
    return {name: release(ds, vghtpe, key) for name, ds in sources.items()}


@pytest.mark.parametrize("name", ["ct", "rtss"])
def test_no_planted_value_is_left(released, patient, name: str) -> None:
    _, data = released[name]
    assert phi_found(data, patient) == []


@pytest.mark.parametrize("name", ["ct", "rtss"])
def test_private_overlay_and_curve_groups_are_gone_at_every_depth(sources, released, name: str) -> None:
    before = [e.tag for _, e in walk(sources[name]) if e.tag.group % 2 == 1]
    assert before  # the builder planted private blocks (incl. a private SQ with private items)
    ds, _ = released[name]
    groups = {e.tag.group for _, e in walk(ds)}
    assert not [g for g in groups if g % 2 == 1]
    assert not [g for g in groups if 0x5000 <= g <= 0x60FF]


def test_the_private_sequence_and_what_it_held_are_gone(sources, released, patient) -> None:
    source = sources["ct"]
    assert source.private_block(0x0011, "VGH PACS INFO 1.0")[0x10].VR == "SQ"
    ds, data = released["ct"]
    assert 0x00111010 not in ds and 0x00110010 not in ds
    assert b"VGH PACS INFO" not in data and b"SIEMENS CSA HEADER" not in data


@pytest.mark.parametrize("name", ["ct", "rtss"])
def test_file_meta_is_rebuilt(sources, released, name: str) -> None:
    ds, data = released[name]
    meta = ds.file_meta
    assert "SourceApplicationEntityTitle" in sources[name].file_meta
    assert set(meta.dir()) == {"FileMetaInformationGroupLength", "FileMetaInformationVersion",
                               "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID",
                               "ImplementationClassUID", "ImplementationVersionName"}
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID != sources[name].SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID != PYDICOM_IMPLEMENTATION_UID
    assert meta.ImplementationVersionName == f"DEID_{__version__}"
    assert b"VGH PACS export" not in data and b"VGHCT01" not in data
    assert data[:128] == b"\x00" * 128 and data[128:132] == b"DICM"


@pytest.mark.parametrize("name", ["ct", "rtss"])
def test_deidentification_marks(released, vghtpe, name: str) -> None:
    ds, _ = released[name]
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == vghtpe.method_description
    codes = ds.DeidentificationMethodCodeSequence
    assert {item.CodeValue for item in codes} == CID_7050_VGHTPE and len(codes) == len(CID_7050_VGHTPE)
    assert {item.CodingSchemeDesignator for item in codes} == {"DCM"}
    assert all(item.CodeMeaning for item in codes)
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


def test_basic_profile_marks(sources, basic, key) -> None:
    ds, _ = release(sources["ct"], basic, key)
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_table_5_1_actions_on_the_ct(released, patient) -> None:
    ds, _ = released["ct"]
    for keyword in ("IssuerOfPatientID", "OtherPatientIDs", "OtherPatientNames", "AdditionalPatientHistory",
                    "NameOfPhysiciansReadingStudy", "InstitutionName", "StationName", "InstitutionalDepartmentName",
                    "AdmittingDiagnosesDescription", "StudyStatusID", "RequestingPhysician", "RequestingService",
                    "RequestedProcedureDescription", "AdmittingDate", "PerformedProcedureStepID",
                    "PerformedProcedureStepDescription", "PerformedProtocolCodeSequence",
                    "ReferencedPerformedProcedureStepSequence"):
        assert keyword not in ds, keyword
    assert "ReferringPhysicianName" in ds and ds.ReferringPhysicianName == ""  # Type 2: empty, not removed
    assert ds.OperatorsName == "" and ds.DeviceSerialNumber == ""
    kept = {"PatientSex": patient.sex, "PatientAge": patient.age, "StudyTime": patient.study_time,
            "Manufacturer": "SIEMENS", "ManufacturerModelName": "Sensation 16", "SoftwareVersions": "VB10B",
            "StudyDescription": "CT SCAN-UPPER ABDOMEN", "SeriesDescription": "Art. Phas 5.0 B31f",
            "ImageComments": "IV contrast", "BodyPartExamined": "ABDOMEN", "SeriesNumber": 3}
    for keyword, value in kept.items():
        assert ds[keyword].value == value, keyword


def test_table_5_2_actions_on_the_rtss(released, patient) -> None:
    ds, _ = released["rtss"]
    assert ds.ReferringPhysicianName == ""
    assert ds.StructureSetLabel == "Liver tumour"
    assert ds.StructureSetROISequence[0].ROIName == "HCCP"
    assert ds.StudyDescription == "CT SCAN-UPPER ABDOMEN"
    assert ds.PatientSex == patient.sex and ds.PatientAge == patient.age


def test_sequences_two_and_three_deep_are_cleaned(tmp_path: Path, vghtpe, key, patient) -> None:
    top, data = release(oddities.ct_deep_sequences(tmp_path, patient), vghtpe, key)
    assert phi_found(data, patient) == []
    depth2 = top.ReferencedImageSequence[0].SourceImageSequence[0]
    assert depth2.PatientName == top.PatientName  # the case number, as at the top
    assert depth2.PatientID == top.PatientID  # the same keyed hash
    assert depth2.StudyDate == patient.study_date[:4] + "0101"
    assert "OtherPatientNames" not in depth2 and "InstitutionName" not in depth2
    assert not [e for e in depth2 if e.tag.group % 2 == 1]
    uids = UidRemapper(key)
    assert depth2.ReferencedSOPInstanceUID == uids.remap(patient.study_instance_uid) == top.StudyInstanceUID
    depth3 = depth2.ReferencedSeriesSequence[0]
    assert depth3.AccessionNumber == top.AccessionNumber
    assert depth3.SeriesInstanceUID == uids.remap(patient.series_uid("P"))
    assert "ReferringPhysicianName" not in depth3  # not in the IOD at this depth: a plain removal


def test_rtss_references_four_sequences_deep_are_remapped(sources, released, key) -> None:
    ds, _ = released["rtss"]
    uids = UidRemapper(key)
    source = sources["rtss"].ReferencedFrameOfReferenceSequence[0]
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == uids.remap(source.FrameOfReferenceUID) == ds.FrameOfReferenceUID
    old = source.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].ContourImageSequence
    new = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].ContourImageSequence
    assert [i.ReferencedSOPInstanceUID for i in new] == [uids.remap(i.ReferencedSOPInstanceUID) for i in old]
    roi = ds.StructureSetROISequence[0]
    assert roi.ReferencedFrameOfReferenceUID == frame.FrameOfReferenceUID


def test_counts_and_adjustments_are_reported(sources, vghtpe, key) -> None:
    from support import to_bytes

    from deid.engine.deidentifier import Deidentifier
    from deid.io.reader import read_object

    result = Deidentifier(vghtpe, key).deidentify(read_object(to_bytes(sources["ct"])))
    assert result.counts["remove"] > 20 and result.counts["remap_uid"] >= 4 and result.counts["hash"] >= 2
    assert any("ReferringPhysicianName" in note and "Type 2" in note for note in result.adjusted)


def test_the_implementation_class_uid_is_deids_own() -> None:
    """A valid UID under 2.25 (a UUID's decimal, PS3.5 B.2), not pydicom's root."""
    uid = UID(IMPLEMENTATION_CLASS_UID)
    assert uid.is_valid and len(uid) <= 64 and uid.startswith("2.25.")
    assert not uid.startswith("1.2.826.0.1.3680043.8.498")
