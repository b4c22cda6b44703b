"""dciodvfy's lines are compared without values: a remapped UID (2.25.<n>) is a UID like the original."""

from __future__ import annotations

from deid.checks.dciodvfy import normalise


def test_a_line_naming_a_remapped_uid_matches_the_original_line() -> None:
    """pydicom's ExplVR_LitEndNoMeta.dcm: Study and Frame of Reference UID are one value, before
    and after remapping; the gate must not see a new error there."""
    before = "Error - StudyInstanceUID has same value as FrameOfReferenceUID <1.2.333.4444.5.6.7.8>"
    after = "Error - StudyInstanceUID has same value as FrameOfReferenceUID <2.25.210426618849057702297>"
    assert normalise(before) == normalise(after)
