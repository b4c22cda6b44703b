"""Reference sequences coded X/Z/U* (Source Image, Referenced Image): kept with remapped UIDs where
the object lists its references in a Common Instance Reference module, removed per the code
elsewhere; the UIDs inside follow the same remapping as the objects they name."""

from __future__ import annotations

import dataclasses
from io import BytesIO

import highdicom as hd
import pytest
from pydicom.dataset import Dataset
from support import SIZE, SLICES, release

from deid.audit.references import Reference
from deid.engine.compiler import compile_rules
from deid.engine.uids import UidRemapper
from deid.synthetic import four_phase_ct, segmentation

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SOURCE_IMAGE = 0x00082112
PER_FRAME, DERIVATION = 0x52009230, 0x00089124


@pytest.fixture(scope="module")
def phases(patient) -> dict[str, list[Dataset]]:
    return four_phase_ct(patient, slices=SLICES, size=SIZE)


def test_the_compiler_keeps_u_star_sequences_only_when_references_are_listed(basic) -> None:
    listed = compile_rules(basic, SEG_CLASS, keep_references=True)
    plain = compile_rules(basic, SEG_CLASS)
    assert listed.decide((), SOURCE_IMAGE, "SQ").action == "keep"
    assert plain.decide((), SOURCE_IMAGE, "SQ").action == "remove"  # Type 3 at the top
    assert plain.decide((PER_FRAME, DERIVATION), SOURCE_IMAGE, "SQ").action == "empty"  # Type 2
    assert listed.decide((PER_FRAME, DERIVATION), SOURCE_IMAGE, "SQ").action == "keep"
    assert listed.decide((), 0x00100010, "PN").action == plain.decide((), 0x00100010, "PN").action


@pytest.mark.parametrize("profile_name", ["basic", "vghtpe"])
def test_a_seg_keeps_every_source_reference_remapped(request, profile_name, phases, key) -> None:
    profile = request.getfixturevalue(profile_name)
    source = segmentation(request.getfixturevalue("patient"), phases["P"])
    expected = [f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                for f in source.PerFrameFunctionalGroupsSequence]
    released, encoded = release(source, profile, key)
    assert hd.seg.segread(BytesIO(encoded)).get_source_image_uids()  # highdicom reads it back
    remap = UidRemapper(key, profile.uid_root).remap
    frames = released.PerFrameFunctionalGroupsSequence
    assert [f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            for f in frames] == [remap(uid) for uid in expected]
    assert {i.ReferencedSOPInstanceUID for i in released.SourceImageSequence} == {
        remap(ds.SOPInstanceUID) for ds in phases["P"]}
    (series,) = released.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == remap(phases["P"][0].SeriesInstanceUID)


def test_an_image_without_a_reference_list_loses_its_type_3_references(basic, phases, key) -> None:
    released, _ = release(phases["P"][1], basic, key)
    assert "SourceImageSequence" not in released and "ReferencedImageSequence" not in released


def test_a_reference_as_a_dict_is_what_asdict_gives() -> None:
    ref = Reference("instance", "1.2.3", "1.2.840.10008.5.1.4.1.1.2", "(0008,1140)[0].(0008,1155)")
    assert list(ref.as_dict().items()) == list(dataclasses.asdict(ref).items())
