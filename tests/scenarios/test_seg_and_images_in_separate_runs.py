"""A user releases a SEG in one `deid run` and its CT series in another (same key, separate outputs
and records, as on two machines): highdicom reads the released SEG, and its segments still resolve
to the released CT images; pixel data passes byte for byte."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from support import SIZE, SLICES, deid, released_headers, run_args, unresolved_references

from deid.synthetic import four_phase_ct, segmentation, write_datasets


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, patient, key_file: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("separate")
    images = four_phase_ct(patient, slices=SLICES, size=SIZE)["P"]
    write_datasets(images, root / "ct-in")
    write_datasets([segmentation(patient, images)], root / "seg-in")
    for name in ("seg", "ct"):  # the SEG first: it arrives before its images
        result = deid(*run_args(root / f"{name}-in", root / f"{name}-out", key_file,
                                "--records", root / f"{name}-records"))
        assert result.returncode == 0, result.stdout + result.stderr
    return {name: root / name for name in ("ct-in", "seg-in", "ct-out", "seg-out")}


def _only(folder: Path) -> Path:
    (path,) = folder.rglob("*.dcm")
    return path


def test_the_references_resolve_across_the_two_outputs(runs) -> None:
    headers = released_headers(runs["ct-out"], runs["seg-out"])
    assert sorted(ds.Modality for ds in headers.values()) == ["CT"] * SLICES + ["SEG"]
    assert unresolved_references(headers) == []


def test_highdicom_reads_the_released_seg_and_its_sources_resolve(runs) -> None:
    seg = hd.seg.segread(_only(runs["seg-out"]))
    images = released_headers(runs["ct-out"])
    sources = seg.get_source_image_uids()
    assert {sop for _study, _series, sop in sources} == set(images)
    for study, series, sop in sources:
        assert (images[sop].StudyInstanceUID, images[sop].SeriesInstanceUID) == (study, series)
    assert seg.FrameOfReferenceUID == {ds.FrameOfReferenceUID for ds in images.values()}.pop()
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Liver", "HCC", "Vertebra"]
    for uid in images:  # every frame still lies on its released source image
        pixels = seg.get_pixels_by_source_instance([uid], assert_missing_frames_are_empty=True)
        assert pixels.shape == (1, SIZE, SIZE, 3)


def test_patient_and_study_match_between_the_runs(runs) -> None:
    seg = pydicom.dcmread(_only(runs["seg-out"]), stop_before_pixels=True)
    for ds in released_headers(runs["ct-out"]).values():
        for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "AccessionNumber", "StudyDate"):
            assert ds[keyword].value == seg[keyword].value, keyword


def test_pixel_data_is_byte_identical(runs) -> None:
    def pixels(folder: Path) -> dict[int, bytes]:
        found = {}
        for path in folder.rglob("*.dcm"):
            ds = pydicom.dcmread(path)
            found[int(ds.InstanceNumber)] = ds.PixelData
        return found

    assert pixels(runs["seg-out"]) == pixels(runs["seg-in"])
    assert pixels(runs["ct-out"]) == pixels(runs["ct-in"])

