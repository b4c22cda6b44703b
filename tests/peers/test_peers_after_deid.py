"""Outside tools on our output: dciodvfy (dicom3tools) finds no error that the input did not have,
and dcmdump (DCMTK) reads every file.  A missing tool skips locally and fails in CI."""

from __future__ import annotations

from pathlib import Path

import peers
import pydicom
import pytest
from support import deid, run_args

from deid.pipeline import Pipeline
from deid.outcome import Written
from deid.synthetic import PHASES, oddities


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory, sample_study: Path, key_file: Path) -> dict[str, tuple[Path, Path]]:
    """(source, output) of the second slice of each phase and of the RTSS, by label."""
    out = tmp_path_factory.mktemp("peers") / "out"
    result = deid(*run_args(sample_study, out, key_file))
    assert result.returncode == 0, result.stderr
    outputs = {}
    for path in out.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        outputs[(ds.Modality, int(ds.SeriesNumber), int(ds.get("InstanceNumber") or 1))] = path
    found = {}
    for source in sorted(sample_study.rglob("*.dcm")):
        ds = pydicom.dcmread(source, stop_before_pixels=True)
        label = "RTSS" if ds.Modality == "RTSTRUCT" else f"CT {ds.SeriesDescription[:4].strip('. ')}"
        number = int(ds.get("InstanceNumber") or 1)
        if ds.Modality == "RTSTRUCT" or number == 2:
            found[label] = (source, outputs[(ds.Modality, int(ds.SeriesNumber), number)])
    assert len(found) == len(PHASES) + 1
    return found


def _no_new_errors(source: Path, output: Path) -> None:
    before = set(peers.dciodvfy_errors(source))
    after = peers.dciodvfy_errors(output)
    assert [line for line in after if line not in before] == []


@pytest.mark.parametrize("label", ["CT Pre", "CT Art", "CT Port", "CT Del", "RTSS"])
def test_dciodvfy_reports_no_new_errors(pairs, label: str) -> None:
    peers.require_tool("dciodvfy")
    source, output = pairs[label]
    _no_new_errors(source, output)


def test_dciodvfy_checks_the_release_against_its_iod_and_finds_no_error(pairs) -> None:
    peers.require_tool("dciodvfy")
    for label, (_, output) in pairs.items():
        lines = peers.dciodvfy_lines(output)
        assert ("RTStructureSet" if label == "RTSS" else "CTImage") in lines, label  # the IOD it checked
        assert peers.dciodvfy_errors(output) == [], label


def test_dcmdump_reads_every_output_file(pairs) -> None:
    peers.require_tool("dcmdump")
    out = next(iter(pairs.values()))[1].parents[3]
    files = sorted(out.rglob("*.dcm"))
    assert len(files) > len(pairs)
    assert [p.name for p in files if not peers.dcmdump_ok(p)] == []


@pytest.mark.parametrize("maker", [oddities.ct_rle, oddities.ct_implicit_vr, oddities.ct_big_endian,
                                   oddities.ct_deep_sequences], ids=lambda f: f.__name__)
def test_other_encodings_pass_the_peers_after_deidentification(tmp_path: Path, maker, vghtpe, key, patient) -> None:
    peers.require_tool("dciodvfy")
    peers.require_tool("dcmdump")
    source = maker(tmp_path / "in", patient)
    outcome = Pipeline(vghtpe, key, out=tmp_path / "out", quarantine=tmp_path / "q").process_file(source)
    assert isinstance(outcome, Written), outcome
    output = tmp_path / "out" / outcome.released.output
    assert peers.dcmdump_ok(output)
    _no_new_errors(source, output)
