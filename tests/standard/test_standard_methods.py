"""PS3.16 CID 7050 De-identification Method codes."""

import pytest

from deid.standard import OPTION_COLUMNS, MethodCode, method_code, method_codes


def test_method_code_by_column_and_value():
    code = method_code("retain_device_identity")
    assert code == MethodCode(
        "113109", "DCM", "Retain Device Identity Option", "retain_device_identity"
    )
    assert method_code("113109") is code
    basic = method_code("basic_profile")
    assert (basic.value, basic.meaning) == ("113100", "Basic Application Confidentiality Profile")
    assert method_code("113101").column is None  # Clean Pixel Data Option: no E.1-1 column
    assert method_code("113102").meaning == "Clean Recognizable Visual Features Option"


def test_every_option_column_has_a_code():
    codes = {method_code(column).value for column in OPTION_COLUMNS}
    assert len(codes) == 10
    assert len(method_codes()) == 13
    assert [c.value for c in method_codes()] == [str(v) for v in range(113100, 113113)]
    assert all(c.scheme == "DCM" for c in method_codes())


def test_unknown_method_code():
    with pytest.raises(KeyError):
        method_code("retain_everything")
