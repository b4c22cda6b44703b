"""deid.audit.cells: which CSV cells are made plain text, shared by the report and the side-cars."""

from __future__ import annotations

import pytest

from deid.audit.cells import spreadsheet_safe


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x","y")', "+A1", "-2+3+cmd|' /C calc'!A0",
                                   "@SUM(A1:A2)", "\tx", "\rx", "-", "+", "=1", "-1-1", "--1"])
def test_text_a_spreadsheet_would_run_gets_a_leading_quote(value: str) -> None:
    assert spreadsheet_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["-12.5", "+3", "-.5", "-4.", "+3e2", "-1E-05", "12", "apex",
                                   "a=b", " -1+1", "", "1.2.840.10008.1"])
def test_numbers_and_other_text_stay_as_they_are(value: str) -> None:
    assert spreadsheet_safe(value) == value


@pytest.mark.parametrize("value", [-3, 2.5, None, True])
def test_values_that_are_not_text_stay_as_they_are(value: object) -> None:
    assert spreadsheet_safe(value) is value
