"""dciodvfy (dicom3tools) before and after de-identification of the three SR classes (also with
every observer, subject and procedure context planted, and pydicom's DCMTK-made reports), and the
profile's dciodvfy gate. A missing tool skips locally and fails in CI."""

from __future__ import annotations

import os
import re
from pathlib import Path

import peers
import pytest
from pydicom.data import get_testdata_file
from support import release, to_bytes

from deid.checks import dciodvfy
from deid.checks.release import check_dciodvfy
from deid.errors import ObjectError
from deid.pipeline import Pipeline
from deid.outcome import Quarantined, Written
from deid.profile.loader import load_profile
from deid.synthetic import SR_CLASSES, landmark_sr

IOD_NAMES = {
    "enhanced": "EnhancedSR",
    "comprehensive": "ComprehensiveSR",
    "comprehensive3d": "Comprehensive3DSR",
}


@pytest.fixture(scope="module")
def released(
    landmark_study, vghtpe, basic, key, tmp_path_factory
) -> dict[tuple[str, str], tuple[Path, Path]]:
    """(source, output) files of each SR class, de-identified with each shipped profile."""
    folder = tmp_path_factory.mktemp("sr-peers")
    pairs = {}
    for profile in (vghtpe, basic):
        for kind, data in landmark_study[1].items():
            source, output = folder / f"{kind}.dcm", folder / f"{kind}.{profile.name}.dcm"
            source.write_bytes(data)
            output.write_bytes(release(data, profile, key)[1])
            pairs[(profile.name, kind)] = (source, output)
    return pairs


@pytest.mark.parametrize("profile", ["vghtpe", "ps3.15-basic"])
@pytest.mark.parametrize("kind", sorted(SR_CLASSES))
def test_dciodvfy_finds_no_new_error_in_a_released_sr(released, profile: str, kind: str) -> None:
    peers.require_tool("dciodvfy")
    source, output = released[(profile, kind)]
    assert IOD_NAMES[kind] in peers.dciodvfy_lines(output)  # it checked the SR class's own IOD
    before, after = peers.dciodvfy_errors(source), peers.dciodvfy_errors(output)
    print(f"dciodvfy errors {kind} ({profile}): before {len(before)}, after {len(after)}")
    assert [line for line in after if line not in before] == []
    assert after == []  # the builder's SRs are valid, and so are the releases


@pytest.mark.parametrize("profile", ["vghtpe", "ps3.15-basic"])
@pytest.mark.parametrize("kind", sorted(SR_CLASSES))
def test_dciodvfy_finds_no_new_error_with_every_context_cleaned(
    tmp_path, landmark_study, patient, key, profile: str, kind: str
) -> None:
    """Concept rules, the TEXT allow-list and the placeholder keep the SR valid."""
    peers.require_tool("dciodvfy")
    source, output = tmp_path / "in.dcm", tmp_path / "out.dcm"
    source.write_bytes(to_bytes(landmark_sr(patient, landmark_study[0], sop_class=kind,
                                            every_context=True)))
    output.write_bytes(release(source, load_profile(profile), key)[1])
    before, after = peers.dciodvfy_errors(source), peers.dciodvfy_errors(output)
    print(f"dciodvfy errors {kind}, every context ({profile}): before {len(before)}, after {len(after)}")
    assert before == [] and after == []


@pytest.mark.parametrize("name", ["reportsi.dcm", "test-SR.dcm"])
def test_dciodvfy_finds_no_new_error_in_pydicoms_reports(tmp_path, vghtpe, key, name: str) -> None:
    """Released now (a placeholder where a TEXT cannot go), and no error that the input lacked."""
    peers.require_tool("dciodvfy")
    source, output = Path(get_testdata_file(name)), tmp_path / "out.dcm"
    output.write_bytes(release(source, vghtpe, key)[1])

    def errors(path: Path) -> list[str]:  # the same error about a remapped UID is the same error
        return [re.sub(r"UID \S+$", "UID <UID>", line) for line in peers.dciodvfy_errors(path)]

    before, after = errors(source), errors(output)
    print(f"dciodvfy errors {name} (vghtpe): before {len(before)}, after {len(after)}")
    assert [line for line in after if line not in before] == []


def test_the_gate_lets_a_valid_release_through(tmp_path, landmark_study, key) -> None:
    peers.require_tool("dciodvfy")
    path = tmp_path / "gate.yaml"
    path.write_text("name: gate\nextends: vghtpe\nrelease_check:\n  dciodvfy: true\n")
    profile = load_profile(path)
    assert profile.dciodvfy_gate
    for kind, data in landmark_study[1].items():
        outcome = Pipeline(
            profile, key, out=tmp_path / "out", quarantine=tmp_path / "q"
        ).process_bytes(data)
        assert isinstance(outcome, Written), (kind, outcome)


def test_the_gate_quarantines_an_error_de_identification_added(
    tmp_path, landmark_study, key
) -> None:
    """A rule the in-process check cannot judge (an enumerated value) is caught by dciodvfy."""
    peers.require_tool("dciodvfy")
    path = tmp_path / "gate.yaml"
    path.write_text(
        "name: gate\nextends: vghtpe\nrelease_check:\n  dciodvfy: true\n"
        "rules:\n  PatientSex: {action: replace, value: X}\n"
    )
    outcome = Pipeline(
        load_profile(path), key, out=tmp_path / "out", quarantine=tmp_path / "q"
    ).process_bytes(landmark_study[1]["comprehensive"])
    assert isinstance(outcome, Quarantined)
    assert outcome.code == "dciodvfy-new-error" and outcome.stage == "check"
    assert "enumerated" in outcome.message and "<X>" not in outcome.message
    assert outcome.path == "(0010,0040)"


def test_check_dciodvfy_counts_what_the_input_had(released) -> None:
    peers.require_tool("dciodvfy")
    source, output = released[("vghtpe", "comprehensive")]
    assert check_dciodvfy(source.read_bytes(), output.read_bytes()) == 0


def test_without_dciodvfy_the_gate_fails_closed(tmp_path, monkeypatch, landmark_study, key) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH on which dciodvfy is not found
    assert dciodvfy.available() is None
    with pytest.raises(ObjectError) as caught:
        check_dciodvfy(b"", b"")
    assert caught.value.code == "dciodvfy-not-available"
    path = tmp_path / "gate.yaml"
    path.write_text("name: gate\nextends: vghtpe\nrelease_check:\n  dciodvfy: true\n")
    outcome = Pipeline(
        load_profile(path), key, out=tmp_path / "out", quarantine=tmp_path / "q"
    ).process_bytes(landmark_study[1]["enhanced"])
    assert isinstance(outcome, Quarantined) and outcome.code == "dciodvfy-not-available"
    assert "dicom3tools" in outcome.message
    assert os.environ["PATH"] == str(tmp_path)
