"""A user releases ultrasound images with a profile that reads burned-in text (pixels.ocr): a real
ultrasound screen (pydicom's US test file: hospital, dates and labels burned in) and screens with a
patient's name, ID and date drawn in come out with the text blanked and every other pixel
unchanged, and `deid report` shows each blanked region after blanking, without any identity."""

from __future__ import annotations

import base64
import json
from io import BytesIO
from pathlib import Path

import numpy as np
import peers
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from support import deid, run_args, tree

from deid.engine import ocr
from deid.synthetic import write_dataset
from deid.synthetic.burned_text import text_cases

PROFILE = """name: ultrasound-ocr
extends: vghtpe
pixels:
  ocr:
    blank: all
"""


def _words(ds: pydicom.Dataset) -> list[str]:
    """The words of four characters or more OCR reads in an object's first frame."""
    frame = ds.pixel_array.reshape(ds.Rows, ds.Columns, -1)
    grey = ocr.display_grey(frame, ds.PhotometricInterpretation, ds.BitsStored, bool(ds.PixelRepresentation))
    return [w.text for w in ocr.read_words(grey, 60) if sum(c.isalnum() for c in w.text) >= 4]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    peers.require_tool("tesseract")
    root = tmp_path_factory.mktemp("us-ocr")
    incoming = root / "incoming"
    incoming.mkdir()
    real = incoming / "us1.dcm"
    real.write_bytes(Path(get_testdata_file("US1_UNCR.dcm")).read_bytes())
    cases = [c for c in text_cases(4, seed=3)[:4] if c.dataset.Modality == "US" or not c.drawn][:2]
    drawn = [write_dataset(c.dataset, incoming / f"{c.name}.dcm") for c in cases]
    profile = root / "ultrasound-ocr.yaml"
    profile.write_text(PROFILE)
    result = deid(*run_args(incoming, root / "out", key_file, "--profile", profile))
    report = deid("report", root / "out-records", "--out", root / "report")
    return {"root": root, "real": real, "cases": cases, "drawn": drawn, "result": result, "report": report,
            "outputs": sorted((root / "out").rglob("*.dcm"))}


def _released(scene: dict, source: Path) -> pydicom.Dataset:
    """The released object made from ``source`` (the same pixels outside what was blanked)."""
    original = pydicom.dcmread(source)
    for path in scene["outputs"]:
        ds = pydicom.dcmread(path)
        if ds.Rows == original.Rows and ds.Columns == original.Columns and \
                (ds.pixel_array == original.pixel_array).mean() > 0.9:
            return ds
    raise AssertionError(f"no output for {source.name}")


def test_every_screen_is_released(scene) -> None:
    result = scene["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(scene["outputs"]) == 1 + len(scene["drawn"])


def test_the_real_ultrasound_text_is_gone_and_the_scan_is_untouched(scene) -> None:
    source = pydicom.dcmread(scene["real"])
    assert len(_words(source)) >= 5  # BAPTIST MED CTR, MSCSKEL, LYMPH NODE...: text was there
    released = _released(scene, scene["real"])
    assert _words(released) == []
    assert released.BurnedInAnnotation == "NO"
    before, after = source.pixel_array, released.pixel_array
    assert (before[150:300, 100:540] == after[150:300, 100:540]).all()  # the scan area itself


def test_drawn_identity_is_gone(scene) -> None:
    for case, source in zip(scene["cases"], scene["drawn"]):
        released = _released(scene, source)
        for drawn in case.drawn:
            x, y, width, height = drawn.box
            assert not released.pixel_array[y:y + height, x:x + width][case.ink[y:y + height, x:x + width]].any()


def test_the_report_shows_the_blanked_regions_after_blanking_and_no_identity(scene) -> None:
    assert scene["report"].returncode == 0, scene["report"].stderr
    page = (scene["root"] / "report" / "report.html").read_text()
    assert 'id="pixels"' in page and "img-src data:" in page
    thumbnails = [part.split('"', 1)[0] for part in page.split('class="thumb" alt="blanked region" src="')[1:]]
    assert len(thumbnails) >= 3
    for uri in thumbnails:
        image = np.asarray(Image.open(BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
        assert [w.text for w in ocr.read_words(image, 60) if len(w.text) >= 4] == []
    data = json.loads((scene["root"] / "report" / "report.json").read_text())
    assert data["pixels"]["objects"] == 1 + len(scene["drawn"]) and data["pixels"]["regions"] >= 3
    for case in scene["cases"]:
        patient_values = [v for v in (case.dataset.PatientID, str(case.dataset.PatientName).split("^")[0])]
        for relative, blob in tree(scene["root"] / "report").items():
            assert not any(value.encode() in blob for value in patient_values), relative
