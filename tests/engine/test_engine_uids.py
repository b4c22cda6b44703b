"""UID remapping: keyed, deterministic, valid, and never applied to the registry's own UIDs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    RTStructureSetStorage,
)
from support import release, walk

from deid.engine.uids import UidRemapper, is_well_known
from deid.engine.vr import fits, has_class_uid_form
from deid.keys import SecretKey
from deid.profile.loader import load_profile
from deid.synthetic import four_phase_ct, make_patient, rtss
from deid.synthetic.modules import DETACHED_STUDY_SOP_CLASS, MPPS_SOP_CLASS

ROOT = "1.2.826.0.1.3680043.10.999"
UID_FORM = re.compile(r"^2\.25\.(0|[1-9]\d*)$")


@pytest.mark.parametrize(("value", "names_a_class"), [
    ("1.2.840.10008.5.1.4.1.1.2", True),  # CT Image Storage
    ("1.3.12.2.1107.5.9.1", True),  # a vendor's private class (Siemens CSA Non-Image)
    ("2.25.1", True),
    ("1.2.840.10008.5.1.4.1.1.02", True),  # a leading zero, as some vendors write: let by
    ("710000", False),  # an accession number under a damaged tag
    ("3.1.2", False), ("12.3", False), ("1.", False), ("", False), ("CT Image", False),
])
def test_a_sop_class_uid_is_an_object_identifier(value: str, names_a_class: bool) -> None:
    assert has_class_uid_form(value) is names_a_class


def test_remap_is_deterministic_across_instances(key: SecretKey, patient) -> None:
    uid = patient.study_instance_uid
    first = UidRemapper(key).remap(uid)
    assert first == UidRemapper(key).remap(uid) == UidRemapper(SecretKey(bytes(range(32)))).remap(uid)
    assert first != uid
    assert UidRemapper(SecretKey(b"\x07" * 32)).remap(uid) != first  # another key, another UID


def test_remap_is_one_to_one_on_the_study(key: SecretKey, patient) -> None:
    uids = [patient.study_instance_uid, patient.frame_of_reference_uid,
            *(patient.series_uid(label) for label in ("N", "A", "P", "D", "RTSS"))]
    remapped = [UidRemapper(key).remap(uid) for uid in uids]
    assert len(set(remapped)) == len(uids)


def test_remapped_uid_is_a_2_25_uid_of_at_most_64_characters(key: SecretKey) -> None:
    remapper = UidRemapper(key)
    for uid in ("1.2.3", "1.3.6.1.4.1.9590.100.1.2." + "9" * 38, "2.25.1"):
        new = remapper.remap(uid)
        assert UID_FORM.match(new), new
        assert len(new) <= 64 and fits("UI", new)
        assert int(new[5:]) < 2**128


@pytest.mark.parametrize("root", [ROOT, "1.2.3", "1.2.840.113619.2.55.3.604688119.969.1234567890"])
def test_remap_under_a_configured_root(key: SecretKey, root: str) -> None:
    new = UidRemapper(key, root).remap("1.2.3.4.5")
    assert new.startswith(root + ".")
    assert len(new) <= 64 and fits("UI", new)
    assert new == UidRemapper(key, root + ".").remap("1.2.3.4.5")  # a trailing dot is the same root


def test_uid_root_from_a_profile_is_used_by_the_engine(tmp_path: Path, key: SecretKey) -> None:
    (tmp_path / "rooted.yaml").write_text(f"name: rooted\nextends: vghtpe\nuid_root: '{ROOT}'\n")
    profile = load_profile(tmp_path / "rooted.yaml")
    patient = make_patient(0)
    ds, _ = release(four_phase_ct(patient, slices=1, size=16)["P"][0], profile, key)
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        value = str(ds[keyword].value)
        assert value.startswith(ROOT + ".") and len(value) <= 64, keyword
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_a_bad_uid_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nuid_root: '1.2.03.x'\n")
    with pytest.raises(Exception, match="uid_root"):
        load_profile(tmp_path / "bad.yaml")


@pytest.mark.parametrize("uid", [CTImageStorage, RTStructureSetStorage, ExplicitVRLittleEndian,
                                 ImplicitVRLittleEndian, RLELossless, MPPS_SOP_CLASS, DETACHED_STUDY_SOP_CLASS,
                                 "1.2.840.10008.1.1", "1.2.840.10008.99.98.97"])
def test_well_known_uids_are_never_remapped(key: SecretKey, uid: str) -> None:
    assert is_well_known(uid)
    assert UidRemapper(key).remap(uid) == uid
    assert UidRemapper(key, ROOT).remap(uid) == uid


def test_empty_uid_stays_empty(key: SecretKey) -> None:
    assert UidRemapper(key).remap("") == ""


def test_engine_keeps_class_and_syntax_uids_and_remaps_every_instance_uid(vghtpe, key, patient) -> None:
    images = four_phase_ct(patient, slices=2, size=16)["P"]
    sources = [images[0], rtss(patient, images)]
    for source in sources:
        before = {str(e.value) for _, e in walk(source) if e.VR == "UI" and e.value}
        ds, _ = release(source, vghtpe, key)
        after = {str(e.value) for _, e in walk(ds) if e.VR == "UI" and e.value}
        assert ds.SOPClassUID == source.SOPClassUID
        assert ds.file_meta.MediaStorageSOPClassUID == source.SOPClassUID
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        kept = before & after
        assert kept and all(is_well_known(uid) for uid in kept), kept - {u for u in kept if is_well_known(u)}
        assert not {uid for uid in after - before if not UID_FORM.match(uid)}


def test_class_uids_inside_sequences_are_kept(vghtpe, key, patient) -> None:
    images = four_phase_ct(patient, slices=2, size=16)["P"]
    ds, _ = release(rtss(patient, images), vghtpe, key)
    study = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    assert study.ReferencedSOPClassUID == DETACHED_STUDY_SOP_CLASS
    series = study.RTReferencedSeriesSequence[0]
    assert {i.ReferencedSOPClassUID for i in series.ContourImageSequence} == {CTImageStorage}
