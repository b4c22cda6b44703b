"""The real corpora the conformance test runs over: DICOM files that packages ship, by corpus name.

- ``pydicom``: pydicom's test files (``pydicom/data/test_files``), installed with pydicom.
- ``pydicom-data``: the ``pydicom-data`` package (test extras), ``data_store/data``.
- ``pynetdicom``: pynetdicom's test files (``pynetdicom/tests/dicom_files``).
- ``debian``: the sample files of Debian packages (dicom3tools, octave-dicom, dicomscope), fetched
  once at set-up by ``tools/corpora.sh`` into ``.venv/share/deid-corpora`` (never at test time).
- ``made``: objects highdicom and rt-utils make from real images of pydicom's test files
  (highdicom's own test data is not in its sdist or wheel).

Every file of a corpus is taken, whatever its name: READMEs, JSON and dumps are inputs a user's
folder may hold too.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DEBIAN_PACKAGES = ("dicom3tools", "octave-dicom", "dicomscope")  # keep in step with tools/corpora.sh


@dataclass(frozen=True)
class Corpus:
    """A folder of real files; ``files`` relative to ``root``, sorted."""

    name: str
    root: Path
    files: tuple[str, ...]


def _site_packages_folder(module: str, *parts: str) -> Path | None:
    try:
        package = __import__(module)
    except ImportError:
        return None
    folder = Path(package.__file__).parent.joinpath(*parts)
    return folder if folder.is_dir() else None


def _listing(root: Path) -> tuple[str, ...]:
    return tuple(sorted(str(p.relative_to(root)) for p in root.rglob("*")
                        if p.is_file() and not p.name.startswith(".") and "__pycache__" not in p.parts))


def corpora_folder() -> Path:
    """Where tools/corpora.sh put the Debian sample files."""
    default = Path(sys.prefix) / "share" / "deid-corpora"
    return Path(os.environ.get("DEID_CORPORA", default))


def installed_root(name: str) -> Path | None:
    """The folder of an installed corpus (all but ``made``), or None when it is not there."""
    if name == "pydicom":
        return _site_packages_folder("pydicom", "data", "test_files")
    if name == "pydicom-data":
        try:
            import data_store  # noqa: F401 - pydicom-data's package
        except ImportError:
            return None
        return _site_packages_folder("data_store", "data")
    if name == "pynetdicom":
        return _site_packages_folder("pynetdicom", "tests", "dicom_files")
    if name == "debian":
        root = corpora_folder() / "debian"
        complete = all((root / package / ".complete").is_file() for package in DEBIAN_PACKAGES)
        return root if complete else None
    raise ValueError(name)


def require(name: str, root: Path | None) -> Corpus:
    """The corpus, or skip the test without it (fail in CI: ``CI=true``)."""
    if root is None:
        message = (f"corpus {name!r} is not installed: install the test extras (pip install -e .[test]) "
                   "and run tools/corpora.sh (tools/setup.sh does both)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return Corpus(name, root, _listing(root))


def make_objects(folder: Path) -> Path:
    """A SEG and an SR by highdicom and an RTSTRUCT by rt-utils, over real CT images of pydicom's
    test files (a 4-slice series of dicomdirtests, and CT_small): the objects a research group's
    tools write. Person names are planted where such tools put them."""
    import highdicom as hd
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.sr.codedict import codes
    from rt_utils import RTStructBuilder

    folder.mkdir(parents=True, exist_ok=True)
    series_folder = Path(get_testdata_file("77654033/CT2/17106")).parent
    images = sorted((pydicom.dcmread(p) for p in series_folder.iterdir()),
                    key=lambda ds: float(ds.ImagePositionPatient[2]))
    mask = np.stack([ds.pixel_array > np.percentile(ds.pixel_array, 60) for ds in images]).astype(np.uint8)

    seg = hd.seg.Segmentation(
        source_images=images, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[hd.seg.SegmentDescription(
            segment_number=1, segment_label="bright", segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)],
        series_instance_uid=hd.UID(), series_number=300, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="lab", manufacturer_model_name="thresholder", software_versions="1",
        device_serial_number="SN-4711", content_creator_name="Lin^Wei-Ting",
    )
    seg.save_as(folder / "highdicom-seg.dcm")

    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.CIRCLE,
        graphic_data=np.array([[64.0, 64.0], [64.0, 74.0]]),
        source_image=hd.sr.SourceImageForRegion.from_source_image(ct))
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="lesion 1"),
        referenced_region=region, finding_type=codes.SCT.Lesion,
        measurements=[hd.sr.Measurement(name=codes.SCT.Diameter, value=10.0, unit=codes.UCUM.Millimeter)])
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Chen^Yu-Hsuan"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[group])
    sr = hd.sr.Comprehensive3DSR(
        evidence=[ct], content=report[0], series_instance_uid=hd.UID(), series_number=400,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="lab", is_complete=True,
        is_final=True, is_verified=True, verifying_observer_name="Chen^Yu-Hsuan", verifying_organization="Lab")
    sr.save_as(folder / "highdicom-sr.dcm")

    rtstruct = RTStructBuilder.create_new(dicom_series_path=str(series_folder))
    rtstruct.add_roi(mask=np.moveaxis(mask, 0, -1).astype(bool), name="bright")
    rtstruct.ds.OperatorsName = "Wu^Chia-Hao"
    rtstruct.save(str(folder / "rt-utils-rtstruct.dcm"))
    return folder
