"""PS3.15 Table E.3.10-1 as packaged: its rows are the source's, named by creator, group and element."""

import hashlib
import json

import pytest

from deid import standard
from deid.standard._data import E3_10_1_FILE, load_json


def test_the_rows_are_the_ones_the_source_recorded():
    data = load_json(E3_10_1_FILE)
    canonical = json.dumps(data["rows"], sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == data["source"]["rows_content_sha256"]
    assert data["source"]["rows_content_sha256"].startswith("7acb26db")  # as pymedphys recorded it
    assert data["edition"] == standard.safe_private_edition() == "2026d"
    assert data["record_count"] == len(standard.safe_private_rows()) == 479
    assert "DICOM PS3.15 2026d" in data["acknowledgement"]


def test_a_row_is_found_by_creator_group_and_element_byte():
    index = standard.safe_private_index()
    row = index[("GEMS_ACQU_01", 0x0019, 0x23)]
    assert (row.vr, row.meaning) == ("DS", "Table Speed [mm/rotation]")
    assert row.describe() == "(0019,xx23) GEMS_ACQU_01"
    # the same group and element under another creator is another attribute
    assert ("SIEMENS MR HEADER", 0x0019, 0x23) not in index
    assert index[("SIEMENS MR HEADER", 0x0019, 0x0C)].meaning == "B Value"


@pytest.mark.parametrize("text", ["(0018,xx10)", "(0019,1010)", "0019,xx10", "(0007,xx10)"])
def test_a_private_tag_is_an_odd_group_and_an_element_byte(text):
    with pytest.raises(ValueError):
        standard.parse_private_tag(text)
    assert standard.parse_private_tag("(0019,xx9e)") == (0x0019, 0x9E)
