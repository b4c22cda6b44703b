"""Pixel Data is copied byte for byte, in the input's transfer syntax, and never decoded."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)
from support import phi_found, release, to_bytes

from deid.synthetic import four_phase_ct, oddities


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it once the input is built: from then on decoding (or re-encoding) pixels fails the test."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Pixel Data was decoded")

    def guard() -> None:
        for name in ("as_array", "as_buffer", "iter_array", "iter_buffer"):
            monkeypatch.setattr(Decoder, name, refuse)
        for name in ("convert_pixel_data", "decompress", "compress"):
            monkeypatch.setattr(Dataset, name, refuse)

    return guard


def _source(kind: str, folder: Path, patient) -> bytes:
    if kind == "native":
        return to_bytes(four_phase_ct(patient, slices=1, size=32)["D"][0])
    maker = {"rle": oddities.ct_rle, "implicit": oddities.ct_implicit_vr, "big_endian": oddities.ct_big_endian}[kind]
    return maker(folder, patient).read_bytes()


@pytest.mark.parametrize(
    ("kind", "syntax"),
    [("native", ExplicitVRLittleEndian), ("rle", RLELossless), ("implicit", ImplicitVRLittleEndian),
     ("big_endian", ExplicitVRBigEndian)],
)
def test_pixel_data_is_byte_identical(tmp_path: Path, vghtpe, key, patient, no_decoding: Callable[[], None], kind: str,
                                      syntax: str) -> None:
    data = _source(kind, tmp_path, patient)
    source = pydicom.dcmread(BytesIO(data))
    no_decoding()
    ds, encoded = release(data, vghtpe, key)
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds["PixelData"].VR == source["PixelData"].VR
    assert ds.PixelData == source.PixelData
    assert ds["PixelData"].is_undefined_length == source["PixelData"].is_undefined_length
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
                    "PhotometricInterpretation", "RescaleIntercept", "RescaleSlope"):
        assert ds[keyword].value == source[keyword].value, keyword
    assert phi_found(encoded, patient) == []


def test_rle_fragments_are_kept_as_they_were(tmp_path: Path, vghtpe, key, patient, no_decoding: Callable[[], None]) -> None:
    data = oddities.ct_rle(tmp_path, patient).read_bytes()
    no_decoding()
    _, encoded = release(data, vghtpe, key)
    start = data.index(b"\xe0\x7f\x10\x00")
    encapsulated = data[start:]  # Pixel Data is the last element: tag, VR, length, items, delimiter
    assert encoded.endswith(encapsulated)
