"""dciodvfy's lines are compared without values: a remapped UID (2.25.<n>) is a UID like the original."""

from __future__ import annotations

from deid.checks.dciodvfy import normalise


def test_a_line_naming_a_remapped_uid_matches_the_original_line() -> None:
    """pydicom's ExplVR_LitEndNoMeta.dcm: Study and Frame of Reference UID are one value, before
    and after remapping; the gate must not see a new error there."""
    before = "Error - StudyInstanceUID has same value as FrameOfReferenceUID <1.2.333.4444.5.6.7.8>"
    after = "Error - StudyInstanceUID has same value as FrameOfReferenceUID <2.25.210426618849057702297>"
    assert normalise(before) == normalise(after)


def test_a_line_naming_an_invalid_uid_matches_the_line_with_its_remapped_uid() -> None:
    """pydicom's reportsi.dcm references an image by the UID '0'; remapped, it is a valid UID."""
    line = ("Error - Referenced SOP Instance is not listed in CurrentRequestedProcedureEvidenceSequence or "
            "PertinentOtherEvidenceSequence but have IMAGE ReferencedSOPInstanceUID ")
    assert normalise(line + "0") == normalise(line + "2.25.132247990832036581327897752711048955216")
