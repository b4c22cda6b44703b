"""Fixtures: keys, profiles and small synthetic studies (test data comes only from deid.synthetic)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from support import SIZE, SLICES, to_bytes

from deid.keys import SecretKey
from deid.profile.loader import load_profile
from deid.profile.model import Profile
from deid.synthetic import (
    SR_CLASSES,
    SyntheticPatient,
    four_phase_ct,
    landmark_sr,
    make_patient,
    write_sample_study,
)


@pytest.fixture(autouse=True)
def _log_level_of_this_test_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-process `deid -q`/`-v` sets DEID_LOG_LEVEL for the workers it starts: undone after each
    test, so a later test's subprocesses log at their own level."""
    monkeypatch.delenv("DEID_LOG_LEVEL", raising=False)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The test's files are made under umask 022 (group and others may read what is not made
    owner-only), whatever the umask pytest was started with; restored after the test."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


@pytest.fixture(scope="session")
def key() -> SecretKey:
    return SecretKey(bytes(range(32)))


@pytest.fixture(scope="session")
def vghtpe() -> Profile:
    return load_profile("vghtpe")


@pytest.fixture(scope="session")
def basic() -> Profile:
    return load_profile("ps3.15-basic")


@pytest.fixture(scope="session")
def patient() -> SyntheticPatient:
    return make_patient(0)


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``key`` fixture as a key file (mode 0600), so command-line runs give repeatable output."""
    path = tmp_path_factory.mktemp("key") / "deid.key"
    path.write_text(bytes(range(32)).hex() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def sample_study(tmp_path_factory: pytest.TempPathFactory, patient: SyntheticPatient) -> Path:
    """A folder holding a four-phase CT and its RTSS, under a PHI-named sub folder (read-only use)."""
    folder = tmp_path_factory.mktemp("sample") / "incoming"
    write_sample_study(folder, patient, slices=SLICES, size=SIZE)
    return folder


@pytest.fixture
def study_copy(tmp_path: Path, patient: SyntheticPatient) -> Path:
    """A fresh sample study of the test's own (for tests that touch the input)."""
    folder = tmp_path / "incoming"
    write_sample_study(folder, patient, slices=SLICES, size=SIZE)
    return folder


@pytest.fixture(scope="session")
def full_study(tmp_path_factory: pytest.TempPathFactory, patient: SyntheticPatient) -> Path:
    """The sample study plus a SEG on the 'P' phase and a PET series (read-only use)."""
    folder = tmp_path_factory.mktemp("full") / "incoming"
    write_sample_study(folder, patient, slices=SLICES, size=SIZE, seg=True, pet=True)
    return folder


@pytest.fixture
def orthanc(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real Orthanc of the test's own (see tests/orthanc.py), stopped after the test."""
    from orthanc import Orthanc

    with Orthanc(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture(scope="session")
def landmark_study(patient: SyntheticPatient) -> tuple[list[Dataset], dict[str, bytes]]:
    """A small CT series (phase P) and the three landmark SRs over it, as Part 10 bytes (built once:
    highdicom takes a while)."""
    images = four_phase_ct(patient, slices=3, size=16, private_elements=0)["P"]
    return images, {kind: to_bytes(landmark_sr(patient, images, sop_class=kind)) for kind in SR_CLASSES}
