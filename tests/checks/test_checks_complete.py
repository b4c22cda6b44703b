"""The input check before the rules: an image that lacks what its pixels need (a file cut at an
element boundary, an empty Rows) is incomplete; objects without a pixel module are not held to
one."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from support import to_bytes

from deid.checks.complete import check_complete, incomplete_paths, short_pixel_data
from deid.errors import ObjectError
from deid.io.reader import read_object
from deid.synthetic import four_phase_ct, landmark_sr
from deid.synthetic.oddities import ct_cut_at

PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
MR_SPECTROSCOPY = "1.2.840.10008.5.1.4.1.1.4.2"
PIXEL_TYPE1 = ["(0028,0002)", "(0028,0004)", "(0028,0010)", "(0028,0011)", "(0028,0100)",
               "(0028,0101)", "(0028,0102)", "(0028,0103)"]


@pytest.fixture(scope="module")
def ct(patient) -> Dataset:
    return four_phase_ct(patient, slices=1, size=16, private_elements=0)["P"][0]


def paths(ds: Dataset) -> list[str]:
    return incomplete_paths(ds, str(ds.get("SOPClassUID", "")))


def test_whole_objects_are_complete(ct, patient) -> None:
    assert paths(read_object(to_bytes(ct))) == []
    assert paths(ct) == []
    sr = landmark_sr(patient, [ct])
    assert paths(read_object(to_bytes(sr))) == []  # an SR has no pixel module


@pytest.mark.parametrize("cut, lacking", [
    (0x00280002, PIXEL_TYPE1 + ["(7FE0,0010)"]),
    (0x00280010, PIXEL_TYPE1[2:] + ["(7FE0,0010)"]),
    (0x7FE00010, ["(7FE0,0010)"]),
])
def test_a_ct_cut_at_an_element_boundary_is_incomplete(tmp_path, patient, cut, lacking) -> None:
    ds = read_object(ct_cut_at(tmp_path, cut, patient).read_bytes())  # it parses cleanly
    assert paths(ds) == lacking
    with pytest.raises(ObjectError) as error:
        check_complete(ds)
    assert (error.value.code, error.value.path) == ("incomplete-object", lacking[0])
    assert patient.patient_id not in error.value.message and patient.name not in error.value.message


def test_an_empty_type1_attribute_or_pixel_data_is_incomplete(ct) -> None:
    ds = read_object(to_bytes(ct))
    ds.PhotometricInterpretation = ""
    ds.PixelData = b""
    assert paths(ds) == ["(0028,0004)", "(7FE0,0010)"]


def test_a_pixel_data_provider_url_stands_for_the_pixel_data(ct) -> None:
    ds = read_object(to_bytes(ct))
    del ds.PixelData
    ds.PixelDataProviderURL = "https://pacs.example/jpip"
    assert paths(ds) == []


def _float_map(**extra: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = PARAMETRIC_MAP
    ds.update({"SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2", "Rows": 2,
               "Columns": 2, "BitsAllocated": 32})
    ds.FloatPixelData = b"\x00" * 16
    for name, value in extra.items():
        setattr(ds, name, value)
    return ds


def test_a_float_parametric_map_is_held_to_its_own_pixel_module() -> None:
    assert paths(_float_map()) == []  # no Bits Stored, High Bit, Pixel Representation: none needed
    ds = _float_map()
    del ds.Columns
    assert paths(ds) == ["(0028,0011)"]


def test_conditional_or_unknown_pixel_modules_count_only_when_pixels_are_there() -> None:
    spectroscopy = Dataset()
    spectroscopy.SOPClassUID = MR_SPECTROSCOPY
    spectroscopy.Rows, spectroscopy.Columns = 1, 1  # data points, not pixels: no pixel module
    assert paths(spectroscopy) == []
    unknown = Dataset()
    unknown.SOPClassUID = generate_uid()
    assert paths(unknown) == []
    unknown.PixelData = b"\x00\x00"
    assert paths(unknown) == PIXEL_TYPE1
    dose = Dataset()
    dose.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"  # RT Dose: Image Pixel is conditional
    assert paths(dose) == []
    dose.Rows = 4
    assert "(7FE0,0010)" in paths(dose)


def test_pixel_data_in_an_object_without_a_pixel_module_is_held_to_image_pixel(ct, patient) -> None:
    """A Patient ID under Pixel Data's tag (a damaged header) in an SR or RT Structure Set: no
    image can be read from it, and it is never released as it came (found by the fuzzer, in a
    real RTSTRUCT)."""
    sr = read_object(to_bytes(landmark_sr(patient, [ct])))
    sr.add_new(0x7FE00010, "OW", patient.patient_id.encode().ljust(12, b" "))
    assert paths(sr) == PIXEL_TYPE1
    with pytest.raises(ObjectError) as error:
        check_complete(sr)
    assert (error.value.code, error.value.path) == ("incomplete-object", "(0028,0002)")
    assert patient.patient_id not in error.value.message
    structure_set = Dataset()
    structure_set.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    assert paths(structure_set) == []


def test_uncompressed_pixel_data_shorter_than_its_image_is_incomplete(ct) -> None:
    """An encapsulated stream under a damaged (uncompressed) transfer syntax, with header bytes
    after it, passed for the pixels: shorter than 16 x 16 x 2 bytes, it is no image, and is not
    released as one (found by the fuzzer: the bytes held the patient's name)."""
    ds = read_object(to_bytes(ct))
    assert short_pixel_data(ds) is None
    needed = len(ds.PixelData)
    ds.PixelData = ds.PixelData[: needed // 2]
    assert short_pixel_data(ds) == (needed // 2, needed)
    with pytest.raises(ObjectError) as error:
        check_complete(ds)
    assert (error.value.code, error.value.path) == ("incomplete-object", "(7FE0,0010)")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"  # JPEG 2000: its length says nothing
    assert short_pixel_data(ds) is None


def test_the_image_length_follows_bits_samples_and_frames(ct) -> None:
    ds = read_object(to_bytes(ct))
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 3, 3, 1, 1
    ds.NumberOfFrames = "2"
    ds.PixelData = b"\x00\x00"  # 18 bits of a 1-bit image: 3 bytes
    assert short_pixel_data(ds) == (2, 3)
    ds.BitsAllocated, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 3, "YBR_FULL_422"
    ds.PixelData = b"\x00" * 36  # two values a pixel: 3 x 3 x 2 frames x 2
    assert short_pixel_data(ds) is None
    ds.Rows = "3"  # a damaged Rows read as text: not measured (no string repeated)
    assert short_pixel_data(ds) is None
