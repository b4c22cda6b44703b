"""References found at any depth, and which of them dangle."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, RTStructureSetStorage

from deid.audit.references import Reference, dangling, is_storage_class, references
from deid.synthetic import four_phase_ct, rtss


def test_rtss_references_every_contour_image_and_its_series_study_and_frame(patient) -> None:
    phases = four_phase_ct(patient, slices=3, size=16)
    images = phases["P"]
    structure_set = rtss(patient, images)
    refs = references(structure_set)
    instance_uids = {r.uid for r in refs if r.kind == "instance"}
    assert instance_uids == {str(i.SOPInstanceUID) for i in images}
    assert all(r.sop_class_uid == CTImageStorage for r in refs if r.kind == "instance")
    assert {r.uid for r in refs if r.kind == "series"} == {str(images[0].SeriesInstanceUID)}
    # RT Referenced Study uses Detached Study Management: a study reference, not an instance
    assert str(images[0].StudyInstanceUID) in {r.uid for r in refs if r.kind == "study"}
    assert str(images[0].FrameOfReferenceUID) in {r.uid for r in refs if r.kind == "frame_of_reference"}
    # the MPPS reference is neither an instance nor a study
    mpps = str(structure_set.ReferencedPerformedProcedureStepSequence[0].ReferencedSOPInstanceUID)
    assert mpps not in {r.uid for r in refs}
    contour_paths = [r.path for r in refs if r.path.startswith("(3006,0039)")]
    assert contour_paths and all(p.endswith("(0008,1155)") for p in contour_paths)
    assert "[" in contour_paths[0] and "PatientName" not in contour_paths[0]


def test_the_objects_own_frame_of_reference_is_not_a_reference() -> None:
    ds = Dataset()
    ds.FrameOfReferenceUID = "1.2.3"
    assert references(ds) == []


def test_uidref_items_are_found() -> None:
    item = Dataset()
    item.ValueType = "UIDREF"
    item.UID = "1.2.3.4"
    ds = Dataset()
    ds.ContentSequence = Sequence([item])
    assert references(ds) == [Reference("uidref", "1.2.3.4", "", "(0040,A730)[0].(0040,A124)")]


def test_dangling_finds_missing_instances_and_wrong_classes() -> None:
    refs = [Reference("instance", "1.1", CTImageStorage, "a"), Reference("instance", "1.2", CTImageStorage, "b"),
            Reference("instance", "1.3", CTImageStorage, "c"), Reference("series", "9.9", "", "d")]
    released = {"1.1": CTImageStorage, "1.3": RTStructureSetStorage}
    assert [r.path for r in dangling(refs, released)] == ["b", "c"]


def test_storage_classes() -> None:
    assert is_storage_class(CTImageStorage)
    assert is_storage_class("1.2.840.10008.5.1.4.1.1.88.34")  # Comprehensive 3D SR
    assert not is_storage_class("1.2.840.10008.3.1.2.3.3")  # MPPS
    assert not is_storage_class("1.2.840.10008.1.20.1")  # Storage Commitment
