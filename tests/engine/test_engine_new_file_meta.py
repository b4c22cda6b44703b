"""The new file meta group's elements are pydicom's own: those made from one made once
(deid.engine.deidentifier._shared_value_element) hold what DataElement(tag, VR, value) holds,
in the validation mode of the time, each its own object."""

from __future__ import annotations

import pytest
from pydicom import config
from pydicom.dataelem import DataElement

from deid.engine.deidentifier import IMPLEMENTATION_CLASS_UID, _shared_value_element


@pytest.mark.parametrize("tag, vr, value", [
    (0x00020001, "OB", b"\x00\x01"),
    (0x00020002, "UI", "1.2.840.10008.5.1.4.1.1.2"),
    (0x00020010, "UI", "1.2.840.10008.1.2.1"),
    (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
    (0x00020013, "SH", "DEID_1.0"),
    (0x00020002, "UI", "1.2.3\\4.5.6"),  # two values: a list, made anew each time
])
def test_a_shared_value_element_is_the_element_pydicom_makes(tag: int, vr: str,
                                                             value: object) -> None:
    first, second = (_shared_value_element(tag, vr, value) for _ in range(2))
    made = DataElement(tag, vr, value)
    for element in (first, second):
        assert element.__dict__.keys() == made.__dict__.keys()
        assert {k: v for k, v in element.__dict__.items() if k != "_value"} == \
            {k: v for k, v in made.__dict__.items() if k != "_value"}
        assert element.value == made.value and type(element.value) is type(made.value)
    assert first is not second
    first.value = b"\x00\x02" if vr == "OB" else "1.2.3"
    assert second.value == made.value  # changing one changes no other


def test_the_validation_mode_of_the_time_is_kept() -> None:
    before = config.settings.reading_validation_mode
    try:
        for mode in (config.WARN, config.IGNORE):
            config.settings.reading_validation_mode = mode
            element = _shared_value_element(0x00020013, "SH", "DEID_1.0")
            made = DataElement(0x00020013, "SH", "x")
            assert element.validation_mode == mode == made.validation_mode
    finally:
        config.settings.reading_validation_mode = before
