"""Attribute Types per IOD (dicom3tools 2024-12-20)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deid.standard import (
    attribute_type,
    iod_attribute_rows,
    iod_for_sop_class,
    iod_modules,
    required_level,
    sop_class_uids,
)
from deid.standard.iod_types import TYPE_ORDER

CT = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEG = "1.2.840.10008.5.1.4.1.1.66.7"
SR_UIDS = {
    "BasicTextSR": "1.2.840.10008.5.1.4.1.1.88.11",
    "EnhancedSR": "1.2.840.10008.5.1.4.1.1.88.22",
    "ComprehensiveSR": "1.2.840.10008.5.1.4.1.1.88.33",
    "Comprehensive3DSR": "1.2.840.10008.5.1.4.1.1.88.34",
    "KeyObjectSelectionDocument": "1.2.840.10008.5.1.4.1.1.88.59",
    "XRayRadiationDoseSR": "1.2.840.10008.5.1.4.1.1.88.67",
}
CONTENT_SEQUENCE = 0x0040A730
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ps3.15"  # shared/ beside the repo
DATA = Path(__file__).resolve().parents[2] / "deid" / "standard" / "data"


def test_sop_classes():
    uids = sop_class_uids()
    assert len(uids) == 116
    assert len(set(uids.values())) == 113  # 128 IODs less 15 variants / private IODs
    assert iod_for_sop_class(CT) == "CTImage"
    assert iod_for_sop_class(RTSTRUCT) == "RTStructureSet"
    assert iod_for_sop_class(SEG) == iod_for_sop_class(LABELMAP_SEG) == "Segmentation"
    assert iod_for_sop_class("1.2.840.10008.5.1.4.1.1.1.2") == "MammographyImageForPresentation"
    assert iod_for_sop_class("1.2.840.10008.5.1.4.1.1.3.1") == "USMultiFrameImage"
    assert iod_for_sop_class("1.2.840.10008.5.1.4.1.1.77.1.4") == "VLPhotographicImage"
    assert iod_for_sop_class("1.2.840.10008.5.1.4.1.1.9.1.1") == "TwelveLeadECG"
    assert iod_for_sop_class(CT + "\x00") == "CTImage"
    assert iod_for_sop_class("1.2.3.4") is None
    with pytest.raises(TypeError):
        uids["1.2.3"] = "X"  # type: ignore[index]


@pytest.mark.parametrize(
    "keyword, tag, expected",
    [
        ("PatientName", 0x00100010, "2"),
        ("PatientID", 0x00100020, "2"),
        ("StudyDate", 0x00080020, "2"),
        ("AccessionNumber", 0x00080050, "2"),
        ("ReferringPhysicianName", 0x00080090, "2"),
        ("SOPInstanceUID", 0x00080018, "1"),
        ("InstitutionName", 0x00080080, "3"),
        ("DeviceSerialNumber", 0x00181000, "3"),
        ("OperatorsName", 0x00081070, "3"),
        ("PatientAge", 0x00101010, "3"),
        ("StudyInstanceUID", 0x0020000D, "1"),
        ("TransferSyntaxUID", 0x00020010, "1"),  # file meta
    ],
)
def test_ct_types(keyword, tag, expected):
    assert attribute_type(CT, (), tag) == expected, keyword


def test_rt_structure_set_types():
    assert attribute_type(RTSTRUCT, (), 0x30060002) == "1"  # Structure Set Label
    assert attribute_type(RTSTRUCT, (), 0x30060008) == "2"  # Structure Set Date
    assert attribute_type(RTSTRUCT, (), 0x00081070) == "2"  # RT Series Operators' Name
    # ROI Name inside Structure Set ROI Sequence
    assert attribute_type(RTSTRUCT, (0x30060020,), 0x30060026) == "2"
    assert attribute_type(RTSTRUCT, (), 0x30060026) is None
    # ROI Interpreter inside RT ROI Observations Sequence
    assert attribute_type(RTSTRUCT, (0x30060080,), 0x300600A6) == "2"
    # Contour Data: ROI Contour Sequence > Contour Sequence > Contour Data
    assert attribute_type(RTSTRUCT, (0x30060039, 0x30060040), 0x30060050) == "1"


def test_segmentation_types():
    for uid in (SEG, LABELMAP_SEG):
        assert attribute_type(uid, (), 0x00700080) == "1"  # Content Label
        # Enhanced General Equipment (1) wins over General Equipment (2)
        assert attribute_type(uid, (), 0x00080070) == "1"  # Manufacturer
        assert attribute_type(uid, (), 0x00181000) == "1"  # Device Serial Number
    # Segment Sequence > Segment Label
    assert attribute_type(SEG, (0x00620002,), 0x00620005) == "1"


@pytest.mark.parametrize("name, uid", sorted(SR_UIDS.items()))
def test_sr_content_date(name, uid):
    assert iod_for_sop_class(uid) == name
    assert attribute_type(uid, (), 0x00080023) == "1"  # Content Date


def test_nested_paths():
    # Referenced Patient Photo Sequence > Type of Instances
    assert attribute_type(CT, (0x00101100,), 0x0040E020) == "1"
    # Contributing Equipment Sequence > Manufacturer / Institution Name
    assert attribute_type(CT, (0x0018A001,), 0x00080070) == "1"
    assert attribute_type(CT, (0x0018A001,), 0x00080080) == "3"
    # Other Patient IDs Sequence > Patient ID
    assert attribute_type(CT, (0x00101002,), 0x00100020) == "1"
    assert attribute_type(CT, (0x00081110,), 0x00100020) is None
    assert required_level(CT, (0x00101002,), 0x00100020) == 1


def test_code_sequence_macro_expanded():
    # Procedure Code Sequence > Code Value / Coding Scheme Designator / Code Meaning
    assert attribute_type(CT, (0x00081032,), 0x00080100) == "1C"
    assert attribute_type(CT, (0x00081032,), 0x00080102) == "1C"
    assert attribute_type(CT, (0x00081032,), 0x00080104) == "1"
    assert required_level(CT, (0x00081032,), 0x00080100) == 1


def test_sr_content_tree_recursion():
    sr = SR_UIDS["ComprehensiveSR"]
    assert attribute_type(sr, (), CONTENT_SEQUENCE) == "1C"
    for depth in (1, 2, 5):
        path = (CONTENT_SEQUENCE,) * depth
        assert attribute_type(sr, path, 0x0040A010) == "1"  # Relationship Type
        assert attribute_type(sr, path, 0x0040A040) == "1"  # Value Type
        assert attribute_type(sr, path, 0x0040A160) == "1C"  # Text Value
        assert attribute_type(sr, path, 0x0040A032) == "1C"  # Observation DateTime
        assert attribute_type(sr, path, CONTENT_SEQUENCE) == "1C"
        assert attribute_type(sr, path + (0x00081199,), 0x00081155) == "1"
        assert attribute_type(sr, path + (0x0040A043,), 0x00080104) == "1"
    pdf = "1.2.840.10008.5.1.4.1.1.104.1"
    assert attribute_type(pdf, (), 0x00420011) == "1"  # Encapsulated Document
    assert attribute_type(pdf, (CONTENT_SEQUENCE,) * 4, 0x0040A040) == "1"


def test_repeating_groups():
    # Overlay Plane module (User option in CT): Overlay Data is Type 1 within it
    assert attribute_type(CT, (), 0x60003000) == "1"
    assert attribute_type(CT, (), 0x60023000) == "1"
    assert attribute_type(CT, (), 0x601E0022) == "3"  # Overlay Description
    assert attribute_type(CT, (), 0x60013000) is None  # private group


def test_required_level():
    assert required_level(CT, (), 0x00080018) == 1
    assert required_level(CT, (), 0x00100010) == 2
    assert required_level(CT, (), 0x00080080) == 3
    assert required_level(CT, (), 0x00091010) == 3
    assert required_level("1.2.3.4", (), 0x00080018) == 3
    assert attribute_type("1.2.3.4", (), 0x00080018) is None
    assert required_level(None, (), 0x00080018) == 3  # type: ignore[arg-type]


def test_iod_rows_and_modules():
    rows = iod_attribute_rows(CT)
    assert isinstance(rows, tuple) and len(rows) > 1000
    assert ((), 0x00100010, "2") in rows
    assert len({(path, tag) for path, tag, _ in rows}) == len(rows)
    assert all(typ in TYPE_ORDER for _, _, typ in rows)
    assert iod_attribute_rows("1.2.3.4") == ()
    modules = iod_modules(CT)
    assert ("Patient", "Patient", "M") in modules
    assert ("Image", "OverlayPlane", "U") in modules
    assert iod_modules("1.2.3.4") == ()


def test_lookups_use_the_table_built_once_per_iod():
    """A lookup (hit or miss, at any depth) reads the IOD's table, made once: its speed is a
    benchmark's business, not a timed assertion's."""
    from deid.standard import iod_types

    rows = iod_attribute_rows(CT)
    queries = [(path, tag) for path, tag, _ in rows[:500]]
    queries += [((), 0x00091000 + i) for i in range(100)]  # misses
    queries += [((0x00081110,), 0x00100000 + i) for i in range(100)]
    attribute_type(CT, (), 0x00100010)  # the table made
    built = iod_types._iod_table.cache_info().misses
    for path, tag in queries * 10:
        required_level(CT, path, tag)
    assert iod_types._iod_table.cache_info().misses == built


@pytest.mark.skipif(
    os.environ.get("CI") != "true"
    and not (SHARED / "iod_attribute_types_selected_dicom3tools_20241220.json").exists(),
    reason="shared source data not available (with CI=true this test runs and fails instead)",
)
def test_matches_the_flattened_source_for_21_iods():
    source = json.loads(
        (SHARED / "iod_attribute_types_selected_dicom3tools_20241220.json").read_text()
    )

    def tag(text):
        return int(text.strip("()").replace(",", "").replace("xx", "00"), 16)

    for name, iod in source["iods"].items():
        expected = {}
        for path, tag_text, _kw, typ, _module, _usage, _cond in iod["attributes"]:
            if tag_text.startswith(("macro:", "...")):
                continue
            key = (tuple(tag(p) for p in path.split(">")) if path else (), tag(tag_text))
            typ = "3" if typ == "3C" else typ
            if key not in expected or TYPE_ORDER[typ] < TYPE_ORDER[expected[key]]:
                expected[key] = typ
        for sop in iod["sop_classes"]:
            assert iod_for_sop_class(sop["uid"]) == name
            got = {(path, t): typ for path, t, typ in iod_attribute_rows(sop["uid"])}
            assert {key: got.get(key) for key in expected} == expected, name


@pytest.mark.skipif(
    os.environ.get("CI") != "true"
    and not (SHARED / "iod_modules_dicom3tools_20241220.json").exists(),
    reason="shared source data not available (with CI=true this test runs and fails instead)",
)
def test_generator_reproduces_committed_file(tmp_path):
    out = tmp_path / "iod_types.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "deid.standard.generate_iod_types",
            str(SHARED / "iod_modules_dicom3tools_20241220.json"),
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == (DATA / "iod_types_dicom3tools_20241220.json").read_bytes()
